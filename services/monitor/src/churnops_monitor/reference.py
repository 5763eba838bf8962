"""What the monitoring report compares against, in order of preference.

1. the baseline sample the quality service keeps in the models bucket (a Parquet with
   "baseline" in its key; the newest one), because PSI alerts are computed against it too;
2. the training data of the latest promotion (recorded with the ModelPromoted alert);
3. the earliest batch the platform scored.
The report says which one it used and why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import pandas as pd
from sqlalchemy import select

from churnops_common.db.tables import alerts
from churnops_common.runtime import Runtime
from churnops_monitor.sources import (
    ScoringRun,
    list_scoring_runs,
    read_inputs,
    read_object_table,
    read_predictions_if_present,
)

log = logging.getLogger(__name__)

EARLIEST_SEARCH = 50  # oldest scoring runs tried when the first ones' files are gone
ReferenceSource = Literal["baseline", "training_data", "earliest_batch"]


@dataclass(frozen=True)
class Reference:
    frame: pd.DataFrame
    source: ReferenceSource
    uri: str
    note: str


def _epoch(value: datetime | None) -> datetime:
    return value or datetime.min.replace(tzinfo=UTC)


def baseline_uri(runtime: Runtime) -> str | None:
    from minio.error import S3Error

    bucket = runtime.settings.minio_models_bucket
    try:
        found = [
            o
            for o in runtime.store.list_objects(bucket)
            if "baseline" in o.key.lower() and o.key.endswith(".parquet")
        ]
    except FileNotFoundError:
        return None
    except S3Error as exc:  # no models bucket yet: nothing was trained
        if exc.code == "NoSuchBucket":
            return None
        raise
    if not found:
        return None
    newest = max(found, key=lambda o: (_epoch(o.last_modified), o.key))
    return str(newest.uri)


def promoted_training_uri(runtime: Runtime) -> str | None:
    """training_data of the newest ModelPromoted the monitor recorded."""
    with runtime.engine.connect() as conn:
        payloads = (
            conn.execute(
                select(alerts.c.payload)
                .where(alerts.c.kind == "ModelPromoted")
                .order_by(alerts.c.created_at.desc())
                .limit(10)
            )
            .scalars()
            .all()
        )
    for payload in payloads:
        data = payload.get("training_data") if isinstance(payload, dict) else None
        if data:
            return f"s3://{data['bucket']}/{data['key']}"
    return None


def earliest_batch(runtime: Runtime) -> tuple[ScoringRun, pd.DataFrame] | None:
    """The first scored batch whose predictions are still there, joined to its inputs."""
    id_col = runtime.settings.id_column
    for run in list_scoring_runs(runtime.engine, limit=EARLIEST_SEARCH, newest_first=False):
        preds = read_predictions_if_present(runtime.store, run.predictions_uri, id_col)
        if preds is None:
            continue
        inputs = read_inputs(runtime.store, run, id_col)
        if inputs is not None:
            extra = [c for c in inputs.columns if c not in preds.columns]
            preds = preds.merge(inputs[[id_col, *extra]], on=id_col, how="left")
        return run, preds
    return None


def find_reference(runtime: Runtime) -> Reference | None:
    uri = baseline_uri(runtime)
    if uri is not None:
        return Reference(
            read_object_table(runtime.store, uri),
            "baseline",
            uri,
            "baseline sample kept by the quality service",
        )
    uri = promoted_training_uri(runtime)
    if uri is not None:
        try:
            frame = read_object_table(runtime.store, uri)
        except FileNotFoundError:
            log.warning("training data %s of the latest promotion is gone", uri)
        else:
            return Reference(
                frame,
                "training_data",
                uri,
                "no baseline sample found in the models bucket; using the training"
                " data of the latest promotion",
            )
    first = earliest_batch(runtime)
    if first is None:
        return None
    run, frame = first
    return Reference(
        frame,
        "earliest_batch",
        run.predictions_uri,
        "no baseline sample and no promoted training data found; using the earliest scored batch",
    )
