"""Scoring a landed batch end to end: read, score, publish outputs, record the run, follow up.

Idempotent on (input object, etag, model name, model version): the run id and the output keys
are derived from them, a recorded run short-circuits, outputs are uploaded whole (one PUT of a
finished local file: S3 and the local store both make it appear atomically, so a worker that
dies mid-batch leaves nothing half-written), and the run row's unique constraint lets exactly
one writer publish BatchScored.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path

from churnops_common.events import (
    BatchScored,
    Event,
    ObjectRef,
    RetrainRequested,
    ScoreChunkRequested,
)
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_scorer import runs
from churnops_scorer.batch import BatchOutputs, score_stream
from churnops_scorer.layout import PREDICTIONS_CSV, PREDICTIONS_FILE, RETENTION_FILE, OutputLayout
from churnops_scorer.models import LoadedModel
from churnops_scorer.reading import columns_of, count_rows, read_chunks
from churnops_scorer.retention import RetentionList
from churnops_scorer.scoring import BatchInfo, ChunkScorer
from churnops_scorer.summary import ScoreSummary

log = logging.getLogger(__name__)
PARQUET_TYPE = "application/vnd.apache.parquet"


def batch_info(
    settings: Settings, model: LoadedModel, ref: ObjectRef, has_target: bool
) -> BatchInfo:
    return BatchInfo(
        model_name=model.name,
        model_version=model.version,
        input_object=ref.uri,
        input_etag=ref.etag,
        id_column=settings.id_column,
        target_column=settings.target_column,
        has_target=has_target,
        risk_medium=settings.scorer_risk_medium,
        risk_high=settings.scorer_risk_high,
    )


def new_retention(settings: Settings) -> RetentionList:
    return RetentionList(
        settings.id_column, settings.retention_value_column, settings.retention_top_k
    )


def local_outputs(folder: Path, settings: Settings) -> BatchOutputs:
    return BatchOutputs(
        folder / PREDICTIONS_FILE, folder / PREDICTIONS_CSV if settings.scorer_write_csv else None
    )


def score_batch(
    runtime: Runtime, ref: ObjectRef, model: LoadedModel, cause: Event, rows_hint: int = 0
) -> list[Event]:
    """Score one input version with one model; split it into chunk tasks when it is large."""
    settings = runtime.settings
    run_id = runs.run_id_for(ref, model.name, model.version)
    if runs.find_run(runtime.engine, run_id) is not None:
        log.info(
            "%s already scored by %s v%s: nothing to do",
            ref.versioned_uri,
            model.name,
            model.version,
        )
        return []
    started = time.perf_counter()
    layout = OutputLayout.of(settings.minio_predictions_bucket, ref, model.version)
    with runtime.store.local_path(ref.bucket, ref.key) as path:
        has_target = settings.target_column in columns_of(path)
        if path.stat().st_size > settings.scorer_split_bytes:
            rows = rows_hint or count_rows(path, settings.id_column)
            return split_batch(runtime, ref, model, cause, run_id, rows, has_target)
        scorer = ChunkScorer(
            model.pipeline, batch_info(settings, model, ref, has_target), settings.scorer_reasons
        )
        with tempfile.TemporaryDirectory(prefix="churnops-score-") as tmp:
            outputs = local_outputs(Path(tmp), settings)
            chunks = read_chunks(path, settings.scorer_chunk_rows, settings.id_column)
            result = score_stream(scorer, chunks, outputs, new_retention(settings))
            predictions = publish(runtime, layout, outputs, result.retention)
    return finish(
        runtime,
        cause,
        ref,
        model,
        run_id,
        predictions,
        result.summary,
        time.perf_counter() - started,
        has_target,
    )


def publish(
    runtime: Runtime, layout: OutputLayout, outputs: BatchOutputs, retention: RetentionList
) -> ObjectRef:
    """Upload the finished files; the predictions file goes last, so its presence means all."""
    store = runtime.store
    store.put_bytes(layout.bucket, layout.key(RETENTION_FILE), retention.to_csv_bytes(), "text/csv")
    if outputs.csv is not None and outputs.csv.exists():
        store.put_file(layout.bucket, layout.key(PREDICTIONS_CSV), outputs.csv, "text/csv")
    info = store.put_file(
        layout.bucket, layout.key(PREDICTIONS_FILE), outputs.predictions, PARQUET_TYPE
    )
    return ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)


def finish(
    runtime: Runtime,
    cause: Event,
    ref: ObjectRef,
    model: LoadedModel,
    run_id: str,
    predictions: ObjectRef,
    summary: ScoreSummary,
    seconds: float,
    has_target: bool,
) -> list[Event]:
    """Record the run; only the writer of the row publishes BatchScored (and RetrainRequested)."""
    from datetime import UTC, datetime

    stats = summary.stats()
    inserted = runs.record_run(
        runtime.engine,
        {
            "run_id": run_id,
            "input_bucket": ref.bucket,
            "input_key": ref.key,
            "input_etag": ref.etag,
            "predictions_uri": predictions.uri,
            "model_name": model.name,
            "model_version": model.version,
            "rows": stats.rows,
            "duration_s": seconds,
            "score_mean": stats.score_mean,
            "score_p50": stats.score_p50,
            "score_p90": stats.score_p90,
            "high_risk_share": stats.high_risk_share,
            "roc_auc": stats.roc_auc,
            "pr_auc": stats.pr_auc,
            "correlation_id": cause.correlation_id,
            "created_at": datetime.now(UTC),
        },
    )
    if not inserted:
        log.info("run %s was recorded by another worker: no second BatchScored", run_id)
        return []
    log.info(
        "scored %s rows of %s with %s v%s in %.2fs -> %s",
        stats.rows,
        ref.uri,
        model.name,
        model.version,
        seconds,
        predictions.uri,
    )
    scored = cause.derive(
        BatchScored,
        run_id,
        input=ref,
        predictions=predictions,
        scoring_run_id=run_id,
        model_name=model.name,
        model_version=model.version,
        rows=stats.rows,
        has_target=has_target,
        roc_auc=stats.roc_auc,
        pr_auc=stats.pr_auc,
    )
    return [
        scored,
        *performance_check(
            runtime.settings, cause, ref, model, run_id, stats.pr_auc, stats.labelled_rows
        ),
    ]


def performance_check(
    settings: Settings,
    cause: Event,
    ref: ObjectRef,
    model: LoadedModel,
    run_id: str,
    pr_auc: float | None,
    labelled: int,
) -> list[Event]:
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
        f"PR-AUC {pr_auc:.4f} on {ref.uri} is below {model.name} v{model.version}'s "
        f"holdout PR-AUC {model.holdout_pr_auc:.4f} minus {settings.scorer_pr_auc_margin}"
    )
    log.warning("%s: requesting a retrain", detail)
    return [cause.derive(RetrainRequested, run_id, reason="performance", detail=detail, data=ref)]


def split_batch(
    runtime: Runtime,
    ref: ObjectRef,
    model: LoadedModel,
    cause: Event,
    run_id: str,
    rows: int,
    has_target: bool,
) -> list[Event]:
    """One ScoreChunkRequested per `scorer_task_rows` rows; the last chunk reads to the end."""
    per_task = runtime.settings.scorer_task_rows
    count = max(1, math.ceil(rows / per_task))
    runs.start_job(
        runtime.engine,
        run_id,
        ref,
        model.name,
        model.version,
        count,
        has_target,
        cause.correlation_id,
    )
    log.info("%s: %d rows split into %d chunk tasks", ref.uri, rows, count)
    return [
        cause.derive(
            ScoreChunkRequested,
            f"{run_id}:{i}",
            input=ref,
            scoring_run_id=run_id,
            model_name=model.name,
            model_version=model.version,
            chunk_index=i,
            chunk_count=count,
            row_start=i * per_task,
            row_stop=min(rows, (i + 1) * per_task),
        )
        for i in range(count)
    ]
