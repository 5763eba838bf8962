"""What a recorded scoring run announces: BatchScored, and RetrainRequested(performance) when a
labelled batch's PR-AUC fell below the champion's holdout PR-AUC.

The dispatcher publishes a handler's follow-ups only after the handler returns, so a handler that
recorded its run and then saw the publish fail runs again on the retry and finds the run row
already there. It must announce the run again, from the row, or the announcement is lost for
good. The events' ids come from the causing event (`Event.derive`), so a subscriber that did get
the first copy drops the second; nothing is written twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import Row

from churnops_common.events import BatchScored, Event, ObjectRef, RetrainRequested
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_common.storage.base import parse_uri
from churnops_scorer.models import LoadedModel

log = logging.getLogger(__name__)

# What a scored batch announces: the batch, and a retrain when its labels say the champion slipped.
type Announcement = BatchScored | RetrainRequested


@dataclass(frozen=True)
class RunFigures:
    """The figures of a scored batch that its follow-up events carry or depend on."""

    rows: int
    has_target: bool
    labelled_rows: int
    roc_auc: float | None
    pr_auc: float | None


def announce(
    settings: Settings,
    cause: Event,
    ref: ObjectRef,
    model: LoadedModel,
    run_id: str,
    predictions: ObjectRef,
    figures: RunFigures,
) -> list[Announcement]:
    """BatchScored for the run, plus RetrainRequested when its labels say the champion slipped."""
    scored = cause.derive(
        BatchScored,
        run_id,
        input=ref,
        predictions=predictions,
        scoring_run_id=run_id,
        model_name=model.name,
        model_version=model.version,
        rows=figures.rows,
        has_target=figures.has_target,
        roc_auc=figures.roc_auc,
        pr_auc=figures.pr_auc,
    )
    retrain = performance_check(
        settings, cause, ref, model, run_id, figures.pr_auc, figures.labelled_rows
    )
    return [scored, *retrain]


def performance_check(
    settings: Settings,
    cause: Event,
    ref: ObjectRef,
    model: LoadedModel,
    run_id: str,
    pr_auc: float | None,
    labelled: int,
) -> list[RetrainRequested]:
    """RetrainRequested(performance) when a labelled batch's PR-AUC fell below the champion's
    registered holdout PR-AUC by more than the margin."""
    if pr_auc is None:
        return []
    if model.holdout_pr_auc is None:
        log.info(
            "no holdout PR-AUC registered for %s v%s: performance check skipped",
            model.name,
            model.version,
        )
        return []
    if labelled < settings.monitor_min_labelled_rows:
        log.info("%d labelled rows: too few for the performance check", labelled)
        return []
    floor = model.holdout_pr_auc - settings.scorer_pr_auc_margin
    if pr_auc >= floor:
        return []
    detail = (
        f"PR-AUC {pr_auc:.4f} on {ref.versioned_uri} is below {model.name} v{model.version}'s "
        f"holdout PR-AUC {model.holdout_pr_auc:.4f} minus {settings.scorer_pr_auc_margin}"
    )
    log.warning("%s: requesting a retrain", detail)
    # No `data`: the trainer takes `data` as the table to train on, and one scored batch is not
    # a training set. It assembles the latest training set plus the labelled batches itself.
    return [cause.derive(RetrainRequested, run_id, reason="performance", detail=detail)]


def recorded(
    runtime: Runtime, cause: Event, ref: ObjectRef, model: LoadedModel, row: Row[Any]
) -> list[Announcement]:
    """The follow-ups of a run that is already recorded, rebuilt from its row and its output.

    Only when the run was recorded in the causing event's chain (a retry, or a second delivery
    racing the first): a batch that another chain already scored and announced is not announced
    again under new event ids.
    """
    if row.correlation_id != cause.correlation_id:
        log.info(
            "%s already scored by %s v%s in another chain: nothing to do",
            ref.versioned_uri,
            model.name,
            model.version,
        )
        return []
    bucket, key = parse_uri(row.predictions_uri)
    info = runtime.store.stat(bucket, key)
    if info is None:
        log.warning(
            "run %s is recorded but %s is gone: not announced", row.run_id, row.predictions_uri
        )
        return []
    predictions = ObjectRef(bucket=bucket, key=key, etag=info.etag, size=info.size)
    has_target, labelled = _labels_in(runtime, predictions, runtime.settings.target_column)
    figures = RunFigures(int(row.rows), has_target, labelled, row.roc_auc, row.pr_auc)
    log.info("run %s was recorded before: announcing it again (same event ids)", row.run_id)
    return announce(runtime.settings, cause, ref, model, row.run_id, predictions, figures)


def _labels_in(runtime: Runtime, predictions: ObjectRef, target: str) -> tuple[bool, int]:
    """Whether the scored batch carried the target, and its labelled rows: the predictions file
    keeps the target column exactly when the input had it (only that column is read)."""
    with runtime.store.local_path(predictions.bucket, predictions.key) as path:
        parquet = pq.ParquetFile(path)
        if target not in parquet.schema_arrow.names:
            return False, 0
        column = parquet.read(columns=[target]).column(target).to_pandas()
    codes = column.astype("Int64")
    return True, int(codes.isin([0, 1]).sum())
