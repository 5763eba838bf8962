"""Retrain guards: the lock, the cooldown and the minimum of new labelled rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from churnops_common.bus.local_bus import LocalBus
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import training_runs
from churnops_common.dispatch import Outcome, handle_message
from churnops_common.events import ObjectRef, RetrainRequested
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_trainer import guard, records
from churnops_trainer.handlers import HANDLERS
from churnops_trainer.training_lock import training_lock

Land = Callable[..., ObjectRef]
TASK = "churnops.trainer.on_retrain_requested"


def _runtime(settings: Settings) -> Runtime:
    runtime = Runtime.from_settings(settings, LocalBus({}))
    upgrade(runtime.engine)
    return runtime


def test_drift_and_performance_need_new_labelled_rows_and_respect_the_cooldown(
    trainer_settings: Settings, land_table: Land
) -> None:
    runtime = _runtime(trainer_settings)
    engine, settings = runtime.engine, trainer_settings
    assert "only 0 new labelled row(s)" in (guard.why_not_retrain(engine, settings, "drift") or "")
    assert guard.why_not_retrain(engine, settings, "manual") is None
    assert guard.why_not_retrain(engine, settings, "new_training_data") is None

    land_table(runtime, generate(150, seed=1), "new_data/a.csv", "new_data")
    assert guard.why_not_retrain(engine, settings, "performance") is None
    run = records.start_run(engine, settings.mlflow_model_name, "drift", "c1")
    records.finish_run(engine, run, "done")
    # Just retrained on drift: the cooldown holds, and the rows are no longer new either.
    assert "cooldown" in (guard.why_not_retrain(engine, settings, "drift") or "")
    hour_later = datetime.now(UTC) + timedelta(seconds=settings.retrain_cooldown_s + 1)
    assert "only 0 new" in (guard.why_not_retrain(engine, settings, "drift", hour_later) or "")
    land_table(runtime, generate(150, seed=2), "new_data/b.csv", "new_data", at=hour_later)
    assert (
        guard.why_not_retrain(engine, settings, "drift", hour_later + timedelta(seconds=1)) is None
    )
    # A manual retrain is never held back by the loop guards.
    assert guard.why_not_retrain(engine, settings, "manual") is None


def test_the_embedded_lock_admits_one_holder(trainer_settings: Settings) -> None:
    runtime = _runtime(trainer_settings)
    with (
        training_lock(runtime.engine, trainer_settings, wait=False) as first,
        training_lock(runtime.engine, trainer_settings, wait=False) as second,
    ):
        assert (first, second) == (True, False)
    with training_lock(runtime.engine, trainer_settings, wait=False) as again:
        assert again


def _wait_for_running(engine: sa.Engine, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(
                sa.select(sa.func.count()).where(training_runs.c.status == "running")
            ).scalar():
                return
        time.sleep(0.05)
    raise AssertionError("the first training never started")


@pytest.mark.services
def test_concurrent_retrain_requests_give_one_training(
    trainer_settings: Settings, land_table: Land, postgres_url: str
) -> None:
    settings = trainer_settings.model_copy(update={"monitoring_db_url": postgres_url})
    runtime = _runtime(settings)
    land_table(runtime, generate(1500, seed=1), "training/t.csv", "training")
    first = RetrainRequested.start_chain("first", reason="manual")
    second = RetrainRequested.start_chain("second", reason="manual")
    outcomes: dict[str, Outcome] = {}

    def deliver(event: RetrainRequested) -> None:
        # Each delivery with its own runtime (connections), as two worker processes would.
        own = Runtime.from_settings(settings, LocalBus({}))
        outcomes[event.event_id] = handle_message(
            TASK, event.model_dump(mode="json"), HANDLERS[TASK], own, final_attempt=True
        )

    worker = threading.Thread(target=deliver, args=(first,))
    worker.start()
    _wait_for_running(runtime.engine)  # the first holds the lock and is training
    deliver(second)
    worker.join(300)

    assert outcomes[second.event_id].status == "done"
    assert outcomes[second.event_id].followups == []
    followups = outcomes[first.event_id].followups
    assert [e.event_type for e in followups] == ["ModelPromoted"]
    with runtime.engine.connect() as conn:
        rows = conn.execute(sa.select(training_runs.c.status, training_runs.c.detail)).all()
    assert sorted(r.status for r in rows) == ["done", "skipped"]
    skipped = next(r for r in rows if r.status == "skipped")
    assert skipped.detail == "another training of this model is running"
    runtime.engine.dispose()


def test_labelled_rows_count_each_object_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from churnops_common.db.engine import make_engine
    from churnops_common.db.migrations import upgrade
    from churnops_common.db.tables import quality_runs
    from churnops_trainer.guard import labelled_rows_since

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [
        # the same labelled batch accepted twice (a redelivery), and another batch
        ("r1", "new_data/a.csv", "e1", start + timedelta(hours=1)),
        ("r2", "new_data/a.csv", "e1", start + timedelta(hours=5)),
        ("r3", "new_data/b.csv", "e2", start + timedelta(hours=2)),
    ]
    with engine.begin() as conn:
        for run_id, key, etag, at in rows:
            conn.execute(
                quality_runs.insert().values(
                    run_id=run_id,
                    bucket="landing",
                    object_key=key,
                    etag=etag,
                    kind="new_data",
                    status="accepted",
                    rows=100,
                    has_target=True,
                    correlation_id="c",
                    created_at=at,
                    warnings=[],
                    details={},
                )
            )
    assert labelled_rows_since(engine, None) == 200
    # a.csv was first seen before the cut-off: its later re-check does not make it new
    assert labelled_rows_since(engine, start + timedelta(hours=1, minutes=30)) == 100
