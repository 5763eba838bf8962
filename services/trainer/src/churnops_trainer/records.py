"""The trainer's records: one `monitoring.training_runs` row per trigger, a skip included.

A run's id is fixed by the task and the trigger's idempotency key, so a redelivered trigger
finds its own run (and what it decided). The loop guards read these rows too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, Row, func, select, update

from churnops_common.db.inserts import insert_for
from churnops_common.db.tables import training_runs
from churnops_common.events import Event, stable_id


class _Holdout(Protocol):
    @property
    def pr_auc(self) -> float: ...


class _Decision(Protocol):
    @property
    def reason(self) -> str: ...


class FinishedTraining(Protocol):
    """What a finished training's row records (`train_model.TrainingResult` is one). A
    protocol, so the records stay below the use case that trains (and the search helpers,
    which read these rows) in the import graph."""

    @property
    def training_rows(self) -> int: ...
    @property
    def holdout_rows(self) -> int: ...
    @property
    def version(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def holdout(self) -> _Holdout: ...
    @property
    def decision(self) -> _Decision: ...


# What a finished training fills in; a restarted run starts without them.
_RESULT_COLUMNS = (
    "training_rows",
    "holdout_rows",
    "labelled_rows",
    "model_version",
    "best_family",
    "holdout_pr_auc",
)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def last_training_start(
    engine: Engine,
    model_name: str,
    triggers: frozenset[str] | None = None,
    ignore_run: str | None = None,
) -> datetime | None:
    """When the last finished (or still running) training of the model started; `ignore_run`
    leaves out a trigger's own earlier attempt (its worker died), which must not block it."""
    query = select(func.max(training_runs.c.started_at)).where(
        training_runs.c.model_name == model_name, training_runs.c.status.in_(["running", "done"])
    )
    if triggers is not None:
        query = query.where(training_runs.c.trigger.in_(sorted(triggers)))
    if ignore_run is not None:
        query = query.where(training_runs.c.run_id != ignore_run)
    with engine.connect() as conn:
        return _utc(conn.execute(query).scalar())


def run_id_for(task_name: str, event: Event) -> str:
    """One training run per (task, trigger): a redelivered trigger finds its own run."""
    return stable_id("training-run", task_name, event.idempotency_key)


def find_run(engine: Engine, run_id: str) -> Row[Any] | None:
    with engine.connect() as conn:
        return conn.execute(select(training_runs).where(training_runs.c.run_id == run_id)).first()


def start_run(
    engine: Engine,
    model_name: str,
    trigger: str,
    correlation_id: str,
    status: str = "running",
    detail: str | None = None,
    run_id: str | None = None,
) -> str:
    """Record a training (or a skip); a run id recorded before (an attempt that died or failed)
    is started afresh, its old figures cleared."""
    run_id = run_id or str(uuid.uuid4())
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "model_name": model_name,
        "trigger": trigger,
        "status": status,
        "detail": detail,
        "data_objects": [],
        "correlation_id": correlation_id,
        "started_at": now,
        "finished_at": None if status == "running" else now,
        **dict.fromkeys(_RESULT_COLUMNS),
    }
    statement = (
        insert_for(engine, training_runs)
        .values(run_id=run_id, **values)
        .on_conflict_do_update(index_elements=["run_id"], set_=values)
    )
    with engine.begin() as conn:
        conn.execute(statement)
    return run_id


def finish_done(
    engine: Engine,
    run_id: str,
    result: FinishedTraining,
    data_objects: list[str],
    labelled_rows: int | None = None,
) -> None:
    """Record a finished training with what a redelivery needs to re-announce its decision."""
    finish_run(
        engine,
        run_id,
        "done",
        training_rows=result.training_rows,
        holdout_rows=result.holdout_rows,
        labelled_rows=labelled_rows,
        data_objects=data_objects,
        model_version=result.version,
        best_family=result.family,
        holdout_pr_auc=result.holdout.pr_auc,
        detail=result.decision.reason,
    )


def finish_run(engine: Engine, run_id: str, status: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(training_runs)
            .where(training_runs.c.run_id == run_id)
            .values(status=status, finished_at=datetime.now(UTC), **values)
        )
