"""Training data: the latest training set plus every labelled batch since, and the holdout.

Labelled batches are new-data files that carried the target, and label files (id + target)
joined by id to the batches the scorer scored. The most recent labelled batch supplies the
holdout (a stratified share of it; the rest joins training), so the gate judges models on the
newest population; with no labelled batch, a stratified share of the training set is held out.
No id appears on both sides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import func, select

from churnops_common.db.tables import quality_runs, scoring_runs
from churnops_common.events import ObjectRef
from churnops_common.runtime import Runtime
from churnops_common.storage import ObjectChanged
from churnops_common.tabular import read_table
from churnops_trainer.splits import can_stratify, stratified_split
from churnops_trainer.target import binary_target

log = logging.getLogger(__name__)
DEFAULT_HOLDOUT_SHARE = 0.2
MIN_HOLDOUT_ROWS = 50
# Batches whose target makes them labelled: new data that carried it, and label files.
LABELLED_KINDS = ("new_data", "labels")


class NoTrainingData(LookupError):
    """There is no accepted training set to train on."""


@dataclass(frozen=True)
class Source:
    ref: ObjectRef
    kind: str
    created_at: datetime | None = None


@dataclass
class TrainingData:
    train: pd.DataFrame  # raw columns, target coerced to 0/1
    holdout: pd.DataFrame
    sources: list[ObjectRef] = field(default_factory=list)
    labelled_rows: int = 0  # rows that came from labelled batches (before the holdout split)
    holdout_from: str = ""
    local_files: list[str] = field(default_factory=list)  # `churnops train` reads local files

    @property
    def data_objects(self) -> list[str]:
        return [ref.versioned_uri for ref in self.sources] + self.local_files


def _ref(row: object) -> ObjectRef:
    return ObjectRef(bucket=row.bucket, key=row.object_key, etag=row.etag)  # type: ignore[attr-defined]


def latest_training_set(runtime: Runtime) -> Source | None:
    query = (
        select(quality_runs)
        .where(quality_runs.c.kind == "training", quality_runs.c.status == "accepted")
        .order_by(quality_runs.c.created_at.desc())
        .limit(1)
    )
    with runtime.engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else Source(_ref(row), "training", row.created_at)


def created_at_of(runtime: Runtime, ref: ObjectRef) -> datetime | None:
    """When quality first accepted this exact object (None when it has no record)."""
    query = select(func.min(quality_runs.c.created_at)).where(
        quality_runs.c.bucket == ref.bucket,
        quality_runs.c.object_key == ref.key,
        quality_runs.c.etag == ref.etag,
        quality_runs.c.status == "accepted",
    )
    with runtime.engine.connect() as conn:
        value: datetime | None = conn.execute(query).scalar()
    return value


def labelled_batches(runtime: Runtime, since: datetime | None) -> list[Source]:
    """Accepted batches with the target, validated after `since`, oldest first."""
    query = (
        select(quality_runs)
        .where(
            quality_runs.c.status == "accepted",
            quality_runs.c.has_target.is_(True),
            quality_runs.c.kind.in_(LABELLED_KINDS),
        )
        .order_by(quality_runs.c.created_at)
    )
    if since is not None:
        query = query.where(quality_runs.c.created_at > since)
    with runtime.engine.connect() as conn:
        rows = conn.execute(query).all()
    seen: set[str] = set()
    sources = []
    for row in rows:  # a file validated twice (same etag) counts once
        ref = _ref(row)
        if ref.versioned_uri not in seen:
            seen.add(ref.versioned_uri)
            sources.append(Source(ref, row.kind, row.created_at))
    return sources


def read_object(runtime: Runtime, ref: ObjectRef) -> pd.DataFrame:
    """The validated version of an object (pinned to its etag): an overwrite is refused."""
    with runtime.store.local_path(ref.bucket, ref.key, etag=ref.etag or None) as path:
        return read_table(path)


def _labels_joined(runtime: Runtime, labels: pd.DataFrame, since: datetime | None) -> pd.DataFrame:
    """Label rows (id, target) joined by id to the features of batches the scorer scored."""
    id_col, target = runtime.settings.id_column, runtime.settings.target_column
    if id_col not in labels.columns:
        log.warning("label file has no %r column; it cannot be joined", id_col)
        return labels.iloc[0:0]
    query = select(
        scoring_runs.c.input_bucket, scoring_runs.c.input_key, scoring_runs.c.input_etag
    ).distinct()
    if since is not None:
        query = query.where(scoring_runs.c.created_at > since)
    with runtime.engine.connect() as conn:
        inputs = conn.execute(query).all()
    wanted = labels[[id_col, target]].assign(**{id_col: labels[id_col].astype(str)})
    joined = []
    for bucket, key, etag in inputs:
        if not runtime.store.exists(bucket, key):
            continue
        try:
            features = read_object(runtime, ObjectRef(bucket=bucket, key=key, etag=etag))
        except ObjectChanged as exc:  # not the batch that was scored: its ids prove nothing
            log.warning("labels not joined to %s: %s", f"s3://{bucket}/{key}", exc)
            continue
        if id_col not in features.columns:
            continue
        features = features.drop(columns=[target], errors="ignore")
        features[id_col] = features[id_col].astype(str)
        joined.append(features.merge(wanted, on=id_col, how="inner"))
    return pd.concat(joined, ignore_index=True) if joined else labels.iloc[0:0]


def _coerced(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    return frame.assign(**{target: binary_target(frame, target)})


def assemble(runtime: Runtime, training: ObjectRef | None = None) -> TrainingData:
    """The training table and its holdout from the monitoring records and the object store."""
    settings = runtime.settings
    target, id_col = settings.target_column, settings.id_column
    if training is None:
        latest = latest_training_set(runtime)
        if latest is None:
            raise NoTrainingData("no accepted training set in landing/training/ yet")
        training, since = latest.ref, latest.created_at
    else:
        since = created_at_of(runtime, training)
    base = _coerced(read_object(runtime, training), target)
    batches: list[tuple[ObjectRef, pd.DataFrame]] = []
    if since is not None:  # labelled data validated after this training set
        for source in labelled_batches(runtime, since):
            frame = read_object(runtime, source.ref)
            if source.kind == "labels":
                frame = _labels_joined(runtime, frame, since)
            if target in frame.columns and len(frame):
                batches.append((source.ref, _coerced(frame, target)))
    return split_holdout(base, batches, training, target, id_col, settings.holdout_share)


def split_holdout(
    base: pd.DataFrame,
    batches: list[tuple[ObjectRef, pd.DataFrame]],
    training: ObjectRef,
    target: str,
    id_col: str,
    share: float,
    seed: int = 42,
) -> TrainingData:
    columns = list(base.columns)
    labelled_rows = sum(len(frame) for _, frame in batches)
    newest = batches[-1][1] if batches else None
    if (
        newest is not None
        and len(newest) * share >= MIN_HOLDOUT_ROWS
        and can_stratify(newest[target], share)
    ):
        rest, holdout = stratified_split(newest, newest[target], share, seed)
        parts = [base, *(frame for _, frame in batches[:-1]), rest]
        holdout_from = f"{share:.0%} of the newest labelled batch {batches[-1][0].uri}"
    else:
        parts = [base, *(frame for _, frame in batches)]
        pooled = _concat(parts, columns, id_col)
        rest, holdout = stratified_split(pooled, pooled[target], DEFAULT_HOLDOUT_SHARE, seed)
        parts = [rest]
        holdout_from = f"{DEFAULT_HOLDOUT_SHARE:.0%} stratified split of the training data"
    train = _concat(parts, columns, id_col)
    holdout = holdout.reindex(columns=columns).reset_index(drop=True)
    if id_col in train.columns and id_col in holdout.columns:
        # A customer in the holdout is never trained on, even with an older label.
        train = train[~train[id_col].astype(str).isin(set(holdout[id_col].astype(str)))]
    return TrainingData(
        train=train.reset_index(drop=True),
        holdout=holdout,
        sources=[training, *(ref for ref, _ in batches)],
        labelled_rows=labelled_rows,
        holdout_from=holdout_from,
    )


def _concat(parts: list[pd.DataFrame], columns: list[str], id_col: str) -> pd.DataFrame:
    """Stack on the training set's columns; a re-labelled id keeps its newest row."""
    frame = pd.concat([p.reindex(columns=columns) for p in parts], ignore_index=True)
    if id_col in frame.columns:
        frame = frame.drop_duplicates(subset=[id_col], keep="last")
    return frame.reset_index(drop=True)
