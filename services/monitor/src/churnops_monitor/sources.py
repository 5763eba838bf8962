"""Reading what other stages wrote: scoring runs, predictions files, landed inputs and labels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from churnops_common.contract import target_codes, unknown_target_message
from churnops_common.db.tables import scoring_runs
from churnops_common.errors import PermanentError
from churnops_common.storage import ObjectStore
from churnops_common.storage.base import ObjectChanged, ObjectNotFound, parse_uri
from churnops_common.tabular import read_table

log = logging.getLogger(__name__)

SCORE = "churn_probability"
OUTCOME_DATE_COLUMNS = ("outcome_date", "outcome_at", "churn_date", "churned_at", "date")


@dataclass(frozen=True, slots=True)
class ScoringRun:
    run_id: str
    input_bucket: str
    input_key: str
    input_etag: str
    predictions_uri: str
    model_name: str
    model_version: str
    rows: int
    created_at: datetime


def list_scoring_runs(
    engine: Engine,
    *,
    since: datetime | None = None,
    limit: int | None = None,
    newest_first: bool = True,
) -> list[ScoringRun]:
    order = scoring_runs.c.created_at.desc() if newest_first else scoring_runs.c.created_at
    query = select(*(scoring_runs.c[f] for f in ScoringRun.__slots__)).order_by(order)
    if since is not None:
        query = query.where(scoring_runs.c.created_at >= since)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [ScoringRun(**row._mapping) for row in conn.execute(query)]


def read_object_table(
    store: ObjectStore, uri: str, columns: list[str] | None = None, etag: str | None = None
) -> pd.DataFrame:
    """A table from the store; `etag` pins the read to the version that was validated."""
    bucket, key = parse_uri(uri)
    with store.local_path(bucket, key, etag=etag or None) as path:
        frame: pd.DataFrame = read_table(path, columns=columns)
    return frame


def read_predictions(store: ObjectStore, uri: str, id_column: str) -> pd.DataFrame:
    """A predictions file (the scorer's contract), ids as text."""
    frame = read_object_table(store, uri)
    missing = {id_column, SCORE} - set(frame.columns)
    if missing:
        raise PermanentError(f"predictions {uri} lack column(s) {sorted(missing)}")
    frame[id_column] = frame[id_column].astype(str)
    return frame


def read_predictions_if_present(
    store: ObjectStore, uri: str, id_column: str
) -> pd.DataFrame | None:
    """Like read_predictions, but a file deleted since (retention) is skipped, with a warning."""
    try:
        return read_predictions(store, uri, id_column)
    except FileNotFoundError:
        log.warning("predictions %s are gone; skipped", uri)
        return None


def read_inputs(store: ObjectStore, run: ScoringRun, id_column: str) -> pd.DataFrame | None:
    """The scored input's rows (features), or None when the file is gone."""
    try:
        frame = read_object_table(
            store, f"s3://{run.input_bucket}/{run.input_key}", etag=run.input_etag
        )
    except (ObjectNotFound, FileNotFoundError):
        return None
    except ObjectChanged as exc:  # another file under the scored key: its rows prove nothing
        log.warning("scored input not read: %s", exc)
        return None
    if id_column not in frame:
        return None
    frame[id_column] = frame[id_column].astype(str)
    return frame.drop_duplicates(id_column, keep="last")


def binary_target(series: pd.Series, name: str) -> pd.Series:
    """0/1 with the platform's target vocabulary; an unknown value is a clear error."""
    codes, unknown = target_codes(series)
    if unknown.any():
        raise PermanentError(unknown_target_message(name, series, unknown))
    return pd.Series(codes, index=series.index, name=name).astype(np.int64)


def read_labels(
    store: ObjectStore,
    bucket: str,
    key: str,
    *,
    id_column: str,
    target: str,
    etag: str | None = None,
) -> pd.DataFrame:
    """A labels file as (id, target[, outcome_date]); the last row wins for a repeated id;
    `etag` pins it to the validated version."""
    with store.local_path(bucket, key, etag=etag or None) as path:
        frame = read_table(path)
    missing = {id_column, target} - set(frame.columns)
    if missing:
        raise PermanentError(f"labels s3://{bucket}/{key} lack column(s) {sorted(missing)}")
    frame = frame.dropna(subset=[id_column, target])
    labels = pd.DataFrame(
        {id_column: frame[id_column].astype(str), target: binary_target(frame[target], target)}
    )
    date_column = next((c for c in OUTCOME_DATE_COLUMNS if c in frame.columns), None)
    if date_column is not None:
        labels["outcome_date"] = pd.to_datetime(frame[date_column], errors="coerce", utc=True)
    return labels.drop_duplicates(id_column, keep="last").reset_index(drop=True)
