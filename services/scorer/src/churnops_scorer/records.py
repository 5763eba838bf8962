"""The scorer's rows in the monitoring store: one scoring run per (input, etag, model version),
and the progress of split batches.

The unique constraint on scoring_runs is the last line of idempotency: whatever raced, only one
row per input version and model version is ever inserted, and only its chain (the row keeps the
correlation id) announces it with BatchScored, under event ids derived from the causing event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, func, select, update

from churnops_common.db.inserts import insert_for
from churnops_common.db.tables import scoring_chunks, scoring_jobs, scoring_runs
from churnops_common.events import ObjectRef, stable_id


def run_id_for(ref: ObjectRef, model_name: str, model_version: str) -> str:
    """Deterministic: the same input version scored by the same model is the same run."""
    return str(stable_id("scoring-run", ref.versioned_uri, model_name, model_version))


def find_run(engine: Engine, run_id: str) -> Row[Any] | None:
    with engine.connect() as conn:
        return conn.execute(select(scoring_runs).where(scoring_runs.c.run_id == run_id)).first()


def record_run(engine: Engine, values: dict[str, Any]) -> bool:
    """Insert the run row; False when a row for this input and model already exists."""
    stmt = (
        insert_for(engine, scoring_runs)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(scoring_runs.c.run_id)
    )  # rowcount is -1 here on psycopg 3
    with engine.begin() as conn:
        return conn.execute(stmt).first() is not None


def latest_run(engine: Engine, model_name: str) -> Row[Any] | None:
    """The most recently recorded scoring run of this model name (any version)."""
    with engine.connect() as conn:
        return conn.execute(
            select(scoring_runs)
            .where(scoring_runs.c.model_name == model_name)
            .order_by(scoring_runs.c.created_at.desc())
            .limit(1)
        ).first()


def start_job(
    engine: Engine,
    run_id: str,
    ref: ObjectRef,
    model_name: str,
    model_version: str,
    chunk_count: int,
    has_target: bool,
    correlation_id: str,
) -> None:
    """Record a split batch (once; a second split of the same batch changes nothing)."""
    now = datetime.now(UTC)
    stmt = (
        insert_for(engine, scoring_jobs)
        .values(
            run_id=run_id,
            input_bucket=ref.bucket,
            input_key=ref.key,
            input_etag=ref.etag,
            model_name=model_name,
            model_version=model_version,
            chunk_count=chunk_count,
            has_target=has_target,
            status="running",
            correlation_id=correlation_id,
            started_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def job(engine: Engine, run_id: str) -> Row[Any] | None:
    with engine.connect() as conn:
        return conn.execute(select(scoring_jobs).where(scoring_jobs.c.run_id == run_id)).first()


def finish_chunk(
    engine: Engine, run_id: str, chunk_index: int, rows: int, seconds: float, part_key: str
) -> bool:
    """Record a finished chunk; True when this chunk must assemble the batch.

    The job row is locked first (FOR UPDATE; SQLite serialises writers anyway), so of two chunks
    finishing together the second sees the first's row and exactly one sees "all done". A chunk
    redelivered after its worker died while assembling is told to assemble again.
    """
    now = datetime.now(UTC)
    with engine.begin() as conn:
        job_row = conn.execute(
            select(scoring_jobs).where(scoring_jobs.c.run_id == run_id).with_for_update()
        ).one()
        conn.execute(
            insert_for(engine, scoring_chunks)
            .values(
                run_id=run_id,
                chunk_index=chunk_index,
                rows=rows,
                seconds=seconds,
                part_key=part_key,
                finished_at=now,
            )
            .on_conflict_do_nothing()
        )
        if job_row.status == "assembling":
            return bool(job_row.assembler_chunk == chunk_index)
        if job_row.status != "running":
            return False
        done = conn.execute(
            select(func.count())
            .select_from(scoring_chunks)
            .where(scoring_chunks.c.run_id == run_id)
        ).scalar_one()
        if done < job_row.chunk_count:
            return False
        conn.execute(
            update(scoring_jobs)
            .where(scoring_jobs.c.run_id == run_id)
            .values(status="assembling", assembler_chunk=chunk_index, updated_at=now)
        )
        return True


def chunk_parts(engine: Engine, run_id: str) -> list[Row[Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(scoring_chunks)
                .where(scoring_chunks.c.run_id == run_id)
                .order_by(scoring_chunks.c.chunk_index)
            )
        )


def finish_job(engine: Engine, run_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(scoring_jobs)
            .where(scoring_jobs.c.run_id == run_id)
            .values(status="done", updated_at=datetime.now(UTC))
        )
