"""Retrain guards: one training at a time, a cooldown, a minimum of new labelled rows.

The lock is a Postgres session advisory lock in stack mode (it dies with the connection, so a
killed worker frees it) and an OS file lock in embedded mode (it dies with the process). The
`training_runs` table remembers each training, which the cooldown and the minimum read.
"""

from __future__ import annotations

import fcntl
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Row, func, select, update

from churnops_common.db.engine import is_sqlite
from churnops_common.db.inserts import insert_for
from churnops_common.db.locks import advisory_lock, lock_id
from churnops_common.db.tables import quality_runs, training_runs
from churnops_common.events import Event, stable_id
from churnops_common.settings import Settings
from churnops_trainer.data import LABELLED_KINDS

if TYPE_CHECKING:
    from churnops_trainer.train_model import TrainingResult

# Triggers that drift or live performance raise on their own: they get the loop guards.
AUTOMATIC_TRIGGERS = frozenset({"drift", "performance"})
# What a finished training fills in; a restarted run starts without them.
_RESULT_COLUMNS = (
    "training_rows",
    "holdout_rows",
    "labelled_rows",
    "model_version",
    "best_family",
    "holdout_pr_auc",
)


@contextmanager
def training_lock(engine: Engine, settings: Settings, *, wait: bool) -> Iterator[bool]:
    """Yield True while this process holds the model's training lock (False: someone else)."""
    if is_sqlite(engine):
        with _file_lock(settings, wait=wait) as held:
            yield held
        return
    key = lock_id("churnops-training", settings.mlflow_model_name)
    with advisory_lock(engine, key, wait=wait) as held:
        yield held


@contextmanager
def _file_lock(settings: Settings, *, wait: bool) -> Iterator[bool]:
    settings.churnops_home.mkdir(parents=True, exist_ok=True)
    path = settings.churnops_home / f"training-{settings.mlflow_model_name}.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def labelled_rows_since(engine: Engine, since: datetime | None) -> int:
    """Rows of accepted labelled batches first validated after `since` (all when None).

    Each object (bucket, key, etag) counts once, however often it was checked.
    """
    per_object = (
        select(
            func.max(quality_runs.c.rows).label("rows"),
            func.min(quality_runs.c.created_at).label("first_seen"),
        )
        .where(
            quality_runs.c.status == "accepted",
            quality_runs.c.has_target.is_(True),
            quality_runs.c.kind.in_(LABELLED_KINDS),
        )
        .group_by(quality_runs.c.bucket, quality_runs.c.object_key, quality_runs.c.etag)
        .subquery()
    )
    query = select(func.coalesce(func.sum(per_object.c.rows), 0))
    if since is not None:
        query = query.where(per_object.c.first_seen > since)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def why_not_retrain(
    engine: Engine,
    settings: Settings,
    trigger: str,
    now: datetime | None = None,
    ignore_run: str | None = None,
) -> str | None:
    """None when a retrain may start; otherwise the reason it is skipped."""
    if trigger not in AUTOMATIC_TRIGGERS:
        return None  # schedule, manual and a new training set bypass the loop guards
    now = now or datetime.now(UTC)
    name = settings.mlflow_model_name
    last_auto = last_training_start(engine, name, AUTOMATIC_TRIGGERS, ignore_run)
    cooldown = timedelta(seconds=settings.retrain_cooldown_s)
    if last_auto is not None and now - last_auto < cooldown:
        wait_s = int((last_auto + cooldown - now).total_seconds())
        return (
            f"cooldown: the last {'/'.join(sorted(AUTOMATIC_TRIGGERS))} retrain started"
            f" {last_auto.isoformat()}; next allowed in {wait_s} s"
        )
    new_rows = labelled_rows_since(engine, last_training_start(engine, name, None, ignore_run))
    if new_rows < settings.retrain_min_new_labelled_rows:
        return (
            f"only {new_rows} new labelled row(s) since the last training;"
            f" {settings.retrain_min_new_labelled_rows} needed (RETRAIN_MIN_NEW_LABELLED_ROWS)"
        )
    return None


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
    result: TrainingResult,
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
