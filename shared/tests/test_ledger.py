from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnops_common.bus.local_bus import LocalBus
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import dead_letters, processed_events
from churnops_common.dispatch import handle_message
from churnops_common.errors import TransientError
from churnops_common.events import Event, MonitoringRequested, RetrainRequested, to_wire
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings

TASK = "churnops.trainer.on_retrain_requested"


def _runtime(settings: Settings, handlers: dict) -> Runtime:  # type: ignore[type-arg]
    runtime = Runtime.from_settings(settings, LocalBus(handlers))
    upgrade(runtime.engine)
    return runtime


def _rows(engine: sa.Engine, table: sa.Table) -> list[sa.Row]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table)))


def test_same_event_twice_runs_the_handler_once(embedded_settings: Settings) -> None:
    calls: list[str] = []

    def handler(event: Event, _rt: Runtime) -> Sequence[Event]:
        calls.append(event.event_id)
        return [event.derive(MonitoringRequested)]

    runtime = _runtime(embedded_settings, {TASK: handler})
    payload = to_wire(RetrainRequested(reason="manual"))
    first = handle_message(TASK, payload, handler, runtime, final_attempt=True)
    second = handle_message(TASK, payload, handler, runtime, final_attempt=True)
    assert (first.status, second.status) == ("done", "skipped")
    assert len(calls) == 1
    [row] = _rows(runtime.engine, processed_events)
    assert (row.status, row.followups, row.attempts) == ("done", 1, 1)


def test_invalid_payload_is_parked_not_raised(embedded_settings: Settings) -> None:
    runtime = _runtime(embedded_settings, {})
    outcome = handle_message(
        TASK,
        {"event_type": "RetrainRequested", "reason": "?"},
        lambda e, r: [],
        runtime,
        final_attempt=False,
    )
    assert outcome.status == "dead_lettered"
    wrong_type = to_wire(MonitoringRequested())
    assert (
        handle_message(TASK, wrong_type, lambda e, r: [], runtime, final_attempt=False).status
        == "dead_lettered"
    )
    rows = _rows(runtime.engine, dead_letters)
    assert len(rows) == 2
    assert "invalid event payload" in rows[0].error and "reason" in rows[0].error
    assert "takes RetrainRequested" in rows[1].error


def test_transient_error_is_raised_for_retry_then_parked_on_last_attempt(
    embedded_settings: Settings,
) -> None:
    attempts: list[int] = []

    def flaky(event: Event, _rt: Runtime) -> Sequence[Event]:
        attempts.append(1)
        raise TransientError("redis away")

    runtime = _runtime(embedded_settings, {TASK: flaky})
    payload = to_wire(RetrainRequested(reason="manual"))
    with pytest.raises(TransientError):
        handle_message(TASK, payload, flaky, runtime, final_attempt=False)
    [row] = _rows(runtime.engine, processed_events)
    assert row.status == "failed" and "redis away" in row.error
    outcome = handle_message(TASK, payload, flaky, runtime, final_attempt=True, attempt=2)
    assert outcome.status == "dead_lettered"
    [row] = _rows(runtime.engine, processed_events)
    assert row.attempts == 2
    assert _rows(runtime.engine, dead_letters)[0].attempts == 2


def test_permanent_error_is_parked_at_once(embedded_settings: Settings) -> None:
    def broken(event: Event, _rt: Runtime) -> Sequence[Event]:
        raise KeyError("column 'age'")

    runtime = _runtime(embedded_settings, {TASK: broken})
    outcome = handle_message(
        TASK, to_wire(RetrainRequested(reason="manual")), broken, runtime, final_attempt=False
    )
    assert outcome.status == "dead_lettered"
    assert "KeyError" in _rows(runtime.engine, dead_letters)[0].error


@pytest.mark.services
def test_postgres_concurrent_deliveries_run_once(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(churnops_home=tmp_path, monitoring_db_url=postgres_url, _env_file=None)
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow(event: Event, _rt: Runtime) -> Sequence[Event]:
        calls.append(1)
        started.set()
        release.wait(10)
        return []

    runtime = _runtime(settings, {TASK: slow})
    payload = to_wire(RetrainRequested(reason="manual"))
    outcomes: list[str] = []
    worker = threading.Thread(
        target=lambda: outcomes.append(
            handle_message(TASK, payload, slow, runtime, final_attempt=True).status
        )
    )
    worker.start()
    assert started.wait(10)
    # The twin delivery arrives while the first is still running: it must not run the handler.
    assert handle_message(TASK, payload, slow, runtime, final_attempt=True).status == "skipped"
    release.set()
    worker.join(10)
    assert outcomes == ["done"]
    assert handle_message(TASK, payload, slow, runtime, final_attempt=True).status == "skipped"
    assert len(calls) == 1
    assert runtime.ledger.outcome(RetrainRequested(reason="manual").correlation_id) == {
        "dead_letters": 0
    }
    runtime.engine.dispose()


def test_a_message_that_keeps_killing_its_worker_is_parked(embedded_settings: Settings) -> None:
    from datetime import UTC, datetime

    from churnops_common.db.ledger import MAX_CRASHES

    calls: list[int] = []

    def handler(event: Event, _rt: Runtime) -> Sequence[Event]:
        calls.append(1)
        return []

    runtime = _runtime(embedded_settings, {TASK: handler})
    event = RetrainRequested(reason="manual")
    # What MAX_CRASHES deliveries that each died mid-task leave behind: 'running', never finished.
    with runtime.engine.begin() as conn:
        conn.execute(
            processed_events.insert().values(
                task_name=TASK,
                idempotency_key=event.idempotency_key,
                event_id=event.event_id,
                event_type=event.event_type,
                correlation_id=event.correlation_id,
                status="running",
                attempts=MAX_CRASHES,
                followups=0,
                started_at=datetime.now(UTC),
            )
        )
    outcome = handle_message(TASK, to_wire(event), handler, runtime, final_attempt=False)
    assert outcome.status == "dead_lettered"
    assert "died 3 times" in _rows(runtime.engine, dead_letters)[0].error
    assert calls == []
    # Later deliveries are dropped; `churnops replay` forgets the record to run it again.
    assert (
        handle_message(TASK, to_wire(event), handler, runtime, final_attempt=False).status
        == "skipped"
    )
    runtime.ledger.forget(TASK, event.idempotency_key)
    assert (
        handle_message(TASK, to_wire(event), handler, runtime, final_attempt=False).status == "done"
    )
    assert calls == [1]
