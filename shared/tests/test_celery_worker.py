"""A real Celery worker process over real Redis, recording into real Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnops_common.bus.celery_bus import CeleryBus
from churnops_common.celery_app import make_celery
from churnops_common.db.engine import make_engine
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import alerts, dead_letters, processed_events
from churnops_common.events import MonitoringRequested
from churnops_common.settings import Settings

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.services


@pytest.fixture
def stack_env(postgres_url: str, redis_url: str) -> dict[str, str]:
    return {
        "CHURNOPS_MODE": "stack",
        "REDIS_URL": redis_url.rsplit("/", 1)[0] + "/3",
        "MONITORING_DB_URL": postgres_url,
        # Stack mode refuses placeholders; these are test-only values, never used to connect.
        "POSTGRES_PASSWORD": "test-only-pg",
        "MINIO_ROOT_USER": "test-only-user",
        "MINIO_ROOT_PASSWORD": "test-only-secret",
    }


@pytest.fixture
def worker(stack_env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    from redis import Redis

    Redis.from_url(stack_env["REDIS_URL"]).delete("monitor")
    upgrade(make_engine(stack_env["MONITORING_DB_URL"]))
    env = {**os.environ, **stack_env, "PYTHONPATH": str(HERE)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "support.recording_worker:app",
            "worker",
            "-Q",
            "monitor",
            "--pool",
            "solo",
            "-n",
            "test-monitor@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        env=env,
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def _wait_for(engine: sa.Engine, condition: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(sa.text(condition)).scalar():
                return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for: {condition}")


def test_event_published_twice_is_recorded_once_and_bad_payload_is_parked(
    worker: subprocess.Popen[bytes],
    stack_env: dict[str, str],
) -> None:
    producer = make_celery(
        "test-producer", Settings(redis_url=stack_env["REDIS_URL"], _env_file=None)
    )
    bus = CeleryBus(producer)
    event = MonitoringRequested.start_chain("test-run-1")
    bus.publish(event)
    bus.publish(event)  # at-least-once delivery: the same event again
    producer.send_task(
        "churnops.monitor.on_monitoring_requested",
        args=[{"event_type": "MonitoringRequested", "since": "yesterday"}],
        queue="monitor",
    )
    # And one more genuine event after the poison message: the worker must still be alive.
    later = MonitoringRequested.start_chain("test-run-2")
    bus.publish(later)

    engine = make_engine(stack_env["MONITORING_DB_URL"])
    _wait_for(engine, "SELECT count(*) = 2 FROM monitoring.processed_events WHERE status='done'")
    _wait_for(engine, "SELECT count(*) = 1 FROM monitoring.dead_letters")
    from redis import Redis

    redis = Redis.from_url(stack_env["REDIS_URL"])
    deadline = time.monotonic() + 30
    while redis.llen("monitor") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the twin, if it were handled, would have written by now
    with engine.connect() as conn:
        alert_rows = conn.execute(sa.select(alerts.c.message)).scalars().all()
        ledger = conn.execute(sa.select(processed_events)).all()
        parked = conn.execute(sa.select(dead_letters)).one()
    assert sorted(alert_rows) == sorted([event.event_id, later.event_id])
    assert {(row.event_id, row.status, row.attempts) for row in ledger} == {
        (event.event_id, "done", 1),
        (later.event_id, "done", 1),
    }
    assert "since" in parked.error
    assert worker.poll() is None
    engine.dispose()
