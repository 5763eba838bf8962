"""Each DAG run end to end: Airflow (`dag.test()`), real Redis as the bus, real Postgres ledger.

The service side is a real Celery worker built by the shared package's `create_worker_app`, with
a small recording handler in place of the service's: what is under test is the DAG's part
(publish once per DAG run, then wait for the ledger's verdict), not the service's work.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from churnops_dags.kickoff import MARKER_PREFIX

from churnops_common.errors import PermanentError
from churnops_common.events import (
    Event,
    IngestRequested,
    MonitoringRequested,
    RetrainRequested,
    parse_event,
    stable_id,
)
from churnops_common.routing import SERVICE_QUEUES
from conftest import DAGS_DIR

pytestmark = pytest.mark.services


@dataclass(frozen=True)
class Case:
    dag_id: str
    queue: str
    task_name: str
    event_type: str
    check: Callable[[Event, datetime], None]


def _no_fields(event: Event, run_after: datetime) -> None:
    return None


def _retrain_fields(event: Event, run_after: datetime) -> None:
    assert isinstance(event, RetrainRequested)
    assert event.reason == "schedule"
    assert "dag_train_register" in event.detail


def _monitoring_fields(event: Event, run_after: datetime) -> None:
    assert isinstance(event, MonitoringRequested)
    assert event.since == run_after - timedelta(weeks=1)


CASES = [
    Case(
        "dag_data_quality_psi",
        "quality",
        "churnops.quality.on_quality_requested",
        "QualityRequested",
        _no_fields,
    ),
    Case(
        "dag_train_register",
        "trainer",
        "churnops.trainer.on_retrain_requested",
        "RetrainRequested",
        _retrain_fields,
    ),
    Case(
        "dag_predict_new_data",
        "quality",
        "churnops.quality.on_sweep_requested",
        "SweepRequested",
        _no_fields,
    ),
    Case(
        "dag_monitoring",
        "monitor",
        "churnops.monitor.on_monitoring_requested",
        "MonitoringRequested",
        _monitoring_fields,
    ),
]


@cache
def _dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=DAGS_DIR, bundle_path=DAGS_DIR, bundle_name="dags-folder")
    assert bag.import_errors == {}
    return dict(bag.dags)


@dataclass(frozen=True)
class Queued:
    task: str
    task_id: str
    payload: dict[str, Any]


def queued(client: Any, queue: str) -> list[Queued]:
    """Decode the Celery messages waiting in the Redis list named after the queue."""
    found = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        assert message["properties"]["body_encoding"] == "base64"
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        assert kwargs == {}
        found.append(Queued(message["headers"]["task"], message["headers"]["id"], args[0]))
    return found


@pytest.fixture
def bus(platform_env: dict[str, str]) -> Iterator[Any]:
    """The private Redis database of these tests, with empty service queues."""
    import redis

    from churnops_common import celery_app

    client = redis.Redis.from_url(platform_env["redis_url"])
    client.delete(*SERVICE_QUEUES)
    # Worker runtimes are cached per app name; each test has its own monitoring database.
    celery_app._RUNTIMES.clear()
    yield client
    client.delete(*SERVICE_QUEUES)
    for key in client.scan_iter(match=MARKER_PREFIX + "*"):
        client.delete(key)
    celery_app._RUNTIMES.clear()
    client.close()


class Recorder:
    """The service's handler stand-in: records each event it handles, or fails on it."""

    def __init__(self, error: Exception | None = None) -> None:
        self.events: list[Event] = []
        self.error = error

    def __call__(self, event: Event, runtime: Any) -> Sequence[Event]:
        self.events.append(event)
        if self.error is not None:
            raise self.error
        return []


@contextmanager
def service_worker(queue: str, task_name: str, handler: Recorder) -> Iterator[None]:
    """A real Celery worker (thread, solo pool) consuming the service's queue from Redis."""
    from celery.contrib.testing.worker import start_worker

    from churnops_common.celery_app import create_worker_app

    app = create_worker_app(queue, {task_name: handler})
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=10
        ):
            yield
    finally:
        app.close()


def run_dag(dag_id: str, when: datetime, *, publish_only: bool = False) -> Any:
    """`dag.test()` of one DAG run; the same `when` means the same run id."""
    dag = _dags()[dag_id]
    return dag.test(
        logical_date=when,
        run_after=when,
        mark_success_pattern="wait_for_outcome" if publish_only else None,
    )


def ledger_outcome(monitoring_url: str, correlation_id: str) -> dict[str, int]:
    from churnops_common.db.engine import make_engine
    from churnops_common.db.ledger import Ledger

    engine = make_engine(monitoring_url)
    try:
        return dict(Ledger(engine).outcome(correlation_id))
    finally:
        engine.dispose()


def task_states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.dag_id)
def test_dag_run_publishes_once_and_reports_the_outcome(
    case: Case, airflow_db: str, platform_env: dict[str, str], bus: Any
) -> None:
    when = datetime.now(UTC)

    # 1. The publishing task alone: exactly one message, on the service's queue, for its task.
    run = run_dag(case.dag_id, when, publish_only=True)
    assert str(run.state) == "success", task_states(run)
    messages = queued(bus, case.queue)
    assert len(messages) == 1
    assert messages[0].task == case.task_name
    event = parse_event(messages[0].payload)
    assert event.event_type == case.event_type
    # The ids come from the DAG run, not from the clock or a random source.
    expected_id = stable_id(case.event_type, f"{case.dag_id}/{run.run_id}")
    assert event.event_id == event.correlation_id == expected_id
    case.check(event, when)
    assert all(queued(bus, q) == [] for q in SERVICE_QUEUES if q != case.queue)

    # 2. The same DAG run again (a retry or a cleared run): the marker stops a second publish.
    run = run_dag(case.dag_id, when, publish_only=True)
    assert str(run.state) == "success", task_states(run)
    assert len(queued(bus, case.queue)) == 1

    # 3. The whole DAG run with the service's worker: the wait sees the handler finish.
    handler = Recorder()
    with service_worker(case.queue, case.task_name, handler):
        run = run_dag(case.dag_id, when)
    assert str(run.state) == "success", task_states(run)
    assert [e.event_id for e in handler.events] == [event.event_id]
    assert queued(bus, case.queue) == []
    assert ledger_outcome(platform_env["monitoring_url"], event.correlation_id) == {
        "done": 1,
        "dead_letters": 0,
    }

    # 4. Once more with the Redis marker gone (expired, or Redis lost it): the ledger alone
    #    stops a publish (no worker runs now, so a new message would stay in the queue).
    bus.delete(MARKER_PREFIX + event.event_id)
    run = run_dag(case.dag_id, when)
    assert str(run.state) == "success", task_states(run)
    assert all(queued(bus, q) == [] for q in SERVICE_QUEUES)
    assert len(handler.events) == 1


def test_a_dead_lettered_kickoff_fails_the_dag_run(
    airflow_db: str, platform_env: dict[str, str], bus: Any
) -> None:
    case = CASES[0]
    handler = Recorder(PermanentError("the latest batch cannot be read"))
    with service_worker(case.queue, case.task_name, handler):
        run = run_dag(case.dag_id, datetime.now(UTC))
    assert str(run.state) == "failed"
    states = task_states(run)
    assert states == {"publish_quality_requested": "success", "wait_for_outcome": "failed"}
    assert len(handler.events) == 1  # a permanent error is not retried
    outcome = ledger_outcome(platform_env["monitoring_url"], handler.events[0].correlation_id)
    assert outcome["dead_letters"] == 1


class BlockingRecorder(Recorder):
    """Holds its handling open until Airflow has recorded that the wait polled and rescheduled."""

    def __init__(self, metadata_url: str, dag_id: str, run_id: str) -> None:
        super().__init__()
        self.metadata_url, self.dag_id, self.run_id = metadata_url, dag_id, run_id
        self.saw_reschedule = False

    def __call__(self, event: Event, runtime: Any) -> Sequence[Event]:
        import time

        deadline = time.monotonic() + 60  # a bound, not a measurement: the wait polls every 1-2 s
        while time.monotonic() < deadline and not self.saw_reschedule:
            self.saw_reschedule = self._reschedules() > 0
            time.sleep(0.2)
        return super().__call__(event, runtime)

    def _reschedules(self) -> int:
        import sqlalchemy as sa

        engine = sa.create_engine(self.metadata_url)
        try:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        sa.text(
                            "SELECT count(*) FROM task_reschedule r JOIN task_instance t"
                            " ON r.ti_id = t.id WHERE t.dag_id = :dag AND t.run_id = :run"
                            " AND t.task_id = 'wait_for_outcome'"
                        ),
                        {"dag": self.dag_id, "run": self.run_id},
                    ).scalar_one()
                )
        finally:
            engine.dispose()


def test_the_wait_holds_until_the_handler_has_finished(
    airflow_db: str, platform_env: dict[str, str], bus: Any
) -> None:
    """The wait must not report success while the service is still working on the event."""
    case = CASES[3]
    when = datetime.now(UTC)
    handler = BlockingRecorder(airflow_db, case.dag_id, f"manual__{when.isoformat()}")
    with service_worker(case.queue, case.task_name, handler):
        run = run_dag(case.dag_id, when)
    assert run.run_id == handler.run_id
    assert handler.saw_reschedule, "the wait never polled while the handler was busy"
    assert str(run.state) == "success", task_states(run)
    assert len(handler.events) == 1


def test_a_misconfigured_airflow_fails_at_once_and_publishes_nothing(
    airflow_db: str, platform_env: dict[str, str], bus: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Embedded mode would wait on a local ledger no worker writes: refused, not retried."""
    monkeypatch.delenv("MONITORING_DB_URL")
    run = run_dag("dag_monitoring", datetime.now(UTC))
    assert str(run.state) == "failed"
    publish = run.get_task_instance("publish_monitoring_requested")
    assert str(publish.state) == "failed"
    assert publish.try_number == 1
    assert all(queued(bus, q) == [] for q in SERVICE_QUEUES)


# dag_ingest: one IngestRequested per due source (sources and schedules: test_dag_ingest.py).
INGEST_TASK = "churnops.ingest.on_ingest_requested"


def test_a_run_publishes_one_event_per_due_source_once_and_waits_for_each(
    ingest_sources_file: Path, airflow_db: str, platform_env: dict[str, str], bus: Any
) -> None:
    midnight = datetime(2026, 12, 7, tzinfo=UTC)
    run = run_dag("dag_ingest", midnight, publish_only=True)
    assert str(run.state) == "success", task_states(run)
    (message,) = queued(bus, "ingest")
    assert message.task == INGEST_TASK
    event = parse_event(message.payload)
    assert isinstance(event, IngestRequested)
    assert (event.source, event.logical_date.isoformat()) == ("daily_customers", "2026-12-07")
    assert event.event_id == stable_id(
        "IngestRequested", f"dag_ingest/{run.run_id}/daily_customers"
    )

    # The same run again publishes nothing; with the ingest worker, the waits see it done.
    handler = Recorder()
    with service_worker("ingest", INGEST_TASK, handler):
        run = run_dag("dag_ingest", midnight)
    assert str(run.state) == "success", task_states(run)
    assert [e.event_id for e in handler.events] == [event.event_id]
    assert queued(bus, "ingest") == []
    bus.delete(MARKER_PREFIX + event.event_id)


def test_an_hour_with_nothing_due_publishes_nothing(
    ingest_sources_file: Path, airflow_db: str, platform_env: dict[str, str], bus: Any
) -> None:
    run = run_dag("dag_ingest", datetime(2026, 12, 7, 3, tzinfo=UTC))
    assert str(run.state) == "success", task_states(run)
    assert queued(bus, "ingest") == []
