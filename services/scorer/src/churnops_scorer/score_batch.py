"""Scoring a landed batch end to end: read, score, publish outputs, record the run, follow up.

Idempotent on (input object, etag, model name, model version): the run id and the output keys
are derived from them, a recorded run short-circuits (it is announced again, from its row, when
this chain recorded it: its publish may have failed), outputs are uploaded whole (one PUT of a
finished local file: S3 and the local store both make it appear atomically, so a worker that
dies mid-batch leaves nothing half-written), and the run row's unique constraint lets exactly
one writer record the run.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from churnops_common.events import DataValidated, Event, ObjectRef, ScoreChunkRequested
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_common.tabular import columns_of, count_rows, read_chunks
from churnops_scorer import campaigns, followups, records
from churnops_scorer.batch import BatchOutputs, needed_columns, score_stream
from churnops_scorer.followups import Announcement
from churnops_scorer.layout import PREDICTIONS_CSV, PREDICTIONS_FILE, RETENTION_FILE, OutputLayout
from churnops_scorer.models import LoadedModel, NoChampion, champion
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
        reason_floor=settings.scorer_reason_floor,
    )


def new_retention(settings: Settings) -> RetentionList:
    return RetentionList.from_settings(settings)


def local_outputs(folder: Path, settings: Settings) -> BatchOutputs:
    return BatchOutputs(
        folder / PREDICTIONS_FILE, folder / PREDICTIONS_CSV if settings.scorer_write_csv else None
    )


def score_validated(
    runtime: Runtime, validated: DataValidated
) -> Sequence[Announcement | ScoreChunkRequested]:
    """A validated new_data batch, scored with the champion; with no champion yet it waits for
    the rescoring a promotion starts (SCORER_RESCORE_ON_PROMOTION), or to be dropped again."""
    try:
        model = champion(runtime)
    except NoChampion as exc:
        log.warning(
            "%s not scored: %s (it is scored when a model is promoted and"
            " SCORER_RESCORE_ON_PROMOTION rescoring reaches it, or when re-dropped)",
            validated.object.uri,
            exc,
        )
        return []
    return score_batch(runtime, validated.object, model, validated, rows_hint=validated.rows)


def score_batch(
    runtime: Runtime, ref: ObjectRef, model: LoadedModel, cause: Event, rows_hint: int = 0
) -> Sequence[Announcement | ScoreChunkRequested]:
    """Score one input version with one model; split it into chunk tasks when it is large."""
    settings = runtime.settings
    run_id = records.run_id_for(ref, model.name, model.version)
    recorded = records.find_run(runtime.engine, run_id)
    if recorded is not None:
        if records.job(runtime.engine, run_id) is not None:
            return []  # a split batch: its assembling chunk announces it (again, on a retry)
        return followups.recorded(runtime, cause, ref, model, recorded)
    started = time.perf_counter()
    layout = OutputLayout.of(settings.minio_predictions_bucket, ref, model.version)
    with runtime.store.local_path(ref.bucket, ref.key, etag=ref.etag or None) as path:
        has_target = settings.target_column in columns_of(path)
        if path.stat().st_size > settings.scorer_split_bytes:
            rows = rows_hint or count_rows(path)
            return split_batch(runtime, ref, model, cause, run_id, rows, has_target)
        scorer = ChunkScorer(
            model.pipeline, batch_info(settings, model, ref, has_target), settings.scorer_reasons
        )
        with tempfile.TemporaryDirectory(prefix="churnops-score-") as tmp:
            outputs = local_outputs(Path(tmp), settings)
            retention = new_retention(settings)
            warning = retention.value_warning(columns_of(path))
            if warning:  # INFO: workers log it (they run at INFO); commands print it once
                log.info("%s: %s", ref.uri, warning)
            chunks = read_chunks(
                path, settings.scorer_chunk_rows, columns=needed_columns(scorer, retention)
            )
            result = score_stream(scorer, chunks, outputs, retention)
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
        result.retention,
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
    retention: RetentionList,
) -> list[Announcement]:
    """Record the run and announce it: BatchScored (and RetrainRequested when labels say so)."""
    from datetime import UTC, datetime

    stats = summary.stats()
    # The campaign first: a recorded run is never scored again, so its campaign must exist.
    campaigns.record(runtime.engine, run_id, model, stats.rows, retention)
    inserted = records.record_run(
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
    if not inserted:  # another delivery recorded it first: announce what it recorded
        row = records.find_run(runtime.engine, run_id)
        return [] if row is None else followups.recorded(runtime, cause, ref, model, row)
    log.info(
        "scored %s rows of %s with %s v%s in %.2fs -> %s",
        stats.rows,
        ref.uri,
        model.name,
        model.version,
        seconds,
        predictions.uri,
    )
    figures = followups.RunFigures(
        stats.rows, has_target, stats.labelled_rows, stats.roc_auc, stats.pr_auc
    )
    return followups.announce(runtime.settings, cause, ref, model, run_id, predictions, figures)


def split_batch(
    runtime: Runtime,
    ref: ObjectRef,
    model: LoadedModel,
    cause: Event,
    run_id: str,
    rows: int,
    has_target: bool,
) -> list[ScoreChunkRequested]:
    """One ScoreChunkRequested per `scorer_task_rows` rows; the last chunk reads to the end."""
    per_task = runtime.settings.scorer_task_rows
    count = max(1, math.ceil(rows / per_task))
    records.start_job(
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
