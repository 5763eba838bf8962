"""One chunk of a split batch, and the assembly of all chunks into the batch's one output.

Each chunk task scores its row range into a part file (plus its part of the retention list) and
records itself; the last one to finish, decided under a row lock in the monitoring store,
assembles the parts in chunk order into the same predictions file an unsplit run would write,
then records the one run row.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from churnops_common.errors import PermanentError
from churnops_common.events import Event, ObjectRef, ScoreChunkRequested
from churnops_common.runtime import Runtime
from churnops_common.tabular import read_chunks
from churnops_scorer import followups, runs
from churnops_scorer.batch import (
    BatchOutputs,
    PredictionWriter,
    needed_columns,
    score_stream,
    target_codes,
)
from churnops_scorer.layout import OutputLayout
from churnops_scorer.models import LoadedModel, model_version
from churnops_scorer.scoring import ChunkScorer, probabilities
from churnops_scorer.service import (
    PARQUET_TYPE,
    batch_info,
    finish,
    local_outputs,
    new_retention,
    publish,
)
from churnops_scorer.summary import ScoreSummary

log = logging.getLogger(__name__)


def score_chunk(runtime: Runtime, event: ScoreChunkRequested) -> list[Event]:
    settings = runtime.settings
    if event.model_name != settings.mlflow_model_name:
        raise PermanentError(
            f"chunk asks for model {event.model_name!r}; this scorer serves "
            f"{settings.mlflow_model_name!r} only"
        )
    job = runs.job(runtime.engine, event.scoring_run_id)
    recorded = runs.find_run(runtime.engine, event.scoring_run_id)
    if recorded is not None:  # the batch is already assembled
        if job is None or job.assembler_chunk != event.chunk_index:
            return []
        # The assembler again (it died, or its publish failed, after recording the run):
        # close the job and announce the run once more, under the same event ids.
        runs.finish_job(runtime.engine, event.scoring_run_id)
        model = model_version(runtime, str(job.model_version))
        return followups.recorded(runtime, event, _job_input(job), model, recorded)
    if job is None:
        raise PermanentError(f"no scoring job {event.scoring_run_id} for this chunk")
    # The model and the input come from the job the split recorded, never from the event:
    # all chunks use one model version on one validated version of the input.
    model = model_version(runtime, str(job.model_version))
    source = _job_input(job)
    layout = OutputLayout.of(settings.minio_predictions_bucket, source, model.version)
    started = time.perf_counter()
    last = event.chunk_index == int(job.chunk_count) - 1
    scorer = ChunkScorer(
        model.pipeline,
        batch_info(settings, model, source, bool(job.has_target)),
        settings.scorer_reasons,
    )
    with (
        runtime.store.local_path(source.bucket, source.key, etag=source.etag or None) as path,
        tempfile.TemporaryDirectory(prefix="churnops-chunk-") as tmp,
    ):
        part = Path(tmp) / "part.parquet"
        retention = new_retention(settings)
        chunks = read_chunks(
            path,
            settings.scorer_chunk_rows,
            event.row_start,
            None if last else event.row_stop,
            columns=needed_columns(scorer, retention),
        )
        result = score_stream(scorer, chunks, BatchOutputs(part), retention)
        ranked = Path(tmp) / "retention.parquet"
        result.retention.save_part(ranked)
        store = runtime.store
        store.put_file(
            layout.bucket, layout.part_retention(event.chunk_index), ranked, PARQUET_TYPE
        )
        store.put_file(layout.bucket, layout.part(event.chunk_index), part, PARQUET_TYPE)
    assemble = runs.finish_chunk(
        runtime.engine,
        event.scoring_run_id,
        event.chunk_index,
        result.rows,
        time.perf_counter() - started,
        layout.part(event.chunk_index),
    )
    log.info(
        "chunk %d/%d of %s: %d rows%s",
        event.chunk_index + 1,
        job.chunk_count,
        source.uri,
        result.rows,
        "; assembling" if assemble else "",
    )
    if not assemble:
        return []
    return assemble_batch(runtime, event, model, layout, job)


def _job_input(job: Any) -> ObjectRef:
    """The input version the split recorded for the job."""
    return ObjectRef(bucket=job.input_bucket, key=job.input_key, etag=job.input_etag)


def assemble_batch(
    runtime: Runtime,
    event: ScoreChunkRequested,
    model: LoadedModel,
    layout: OutputLayout,
    job: Any,
) -> list[Event]:
    """Concatenate the parts in order into the batch's output; record the run once."""
    settings = runtime.settings
    started_at: datetime = job.started_at
    parts = runs.chunk_parts(runtime.engine, event.scoring_run_id)
    summary = ScoreSummary(high_threshold=settings.scorer_risk_high)
    retention = new_retention(settings)
    with tempfile.TemporaryDirectory(prefix="churnops-assemble-") as tmp:
        outputs = local_outputs(Path(tmp), settings)
        writer: PredictionWriter | None = None
        for part in parts:
            with runtime.store.local_path(layout.bucket, part.part_key) as path:
                reader = pq.ParquetFile(path)
                writer = writer or PredictionWriter(outputs, reader.schema_arrow)
                for batch in reader.iter_batches(batch_size=settings.scorer_chunk_rows):
                    writer.write(batch)
                    summary.add(probabilities(batch), target_codes(batch, settings.target_column))
            ranked = runtime.store.get_bytes(layout.bucket, layout.part_retention(part.chunk_index))
            retention.merge_part(io.BytesIO(ranked))
        if writer is not None:
            writer.close()
        predictions = publish(runtime, layout, outputs, retention)
    # Wall time since the split: what the batch took, however many replicas shared it.
    elapsed = datetime.now(UTC) - started_at.replace(tzinfo=started_at.tzinfo or UTC)
    followups = finish(
        runtime,
        event,
        _job_input(job),
        model,
        event.scoring_run_id,
        predictions,
        summary,
        elapsed.total_seconds(),
        bool(job.has_target),
        retention,
    )
    runs.finish_job(runtime.engine, event.scoring_run_id)
    return followups
