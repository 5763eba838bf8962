"""The Celery task path end to end: real Redis, real Postgres, a real worker, S3 via moto.

A DataLanded published over Redis reaches the quality worker, which validates the object, writes
its rows in Postgres and publishes DataValidated (+ PsiBreached) to the subscribers' queues.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from churnops_common.bus.celery_bus import CeleryBus
from churnops_common.db.engine import make_engine
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import feature_psi, processed_events, quality_runs
from churnops_common.events import DataLanded, ObjectRef, parse_event
from churnops_common.report_names import quality_folder
from churnops_common.settings import Settings, get_settings
from churnops_common.synthetic import generate

pytestmark = pytest.mark.services

REDIS_DB = 13  # private to this test; only the queue keys it fills are deleted afterwards
QUEUES = ("quality", "scorer", "monitor", "trainer")


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, postgres_url: str, moto_endpoint: str
) -> Iterator[Settings]:
    broker = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    env = {
        "CHURNOPS_MODE": "stack",
        "REDIS_URL": broker,
        "MONITORING_DB_URL": postgres_url,
        "MINIO_ENDPOINT": moto_endpoint,
        "MINIO_REGION": "us-east-1",
        "MINIO_ROOT_USER": "quality-test-user",
        "MINIO_ROOT_PASSWORD": "quality-test-pass",
        "POSTGRES_PASSWORD": "quality-test-pg",
        "QUALITY_MLFLOW_ENABLED": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = get_settings()
    client = redis.Redis.from_url(broker)
    client.delete(*QUEUES)
    yield settings
    client.delete(*QUEUES)
    get_settings.cache_clear()


def _queued(client: redis.Redis, queue: str) -> list[tuple[str, dict[str, Any]]]:
    """(task name, event payload) of every message waiting in a queue, oldest first."""
    found = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # kombu pushes on the left
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        found.append((message["headers"]["task"], args[0]))
    return found


def _wait_for_runs(engine: sa.Engine, count: int, limit_s: float = 90) -> list[sa.Row]:  # type: ignore[type-arg]
    deadline = time.monotonic() + limit_s
    while True:
        with engine.connect() as conn:
            rows = list(conn.execute(sa.select(quality_runs).order_by(quality_runs.c.created_at)))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_landed_files_through_a_real_worker(stack: Settings, tmp_path: Path) -> None:
    from celery.contrib.testing.worker import start_worker

    from churnops_common import celery_app
    from churnops_common.storage import object_store_from_settings
    from churnops_quality.handlers import HANDLERS

    engine = make_engine(stack.monitoring_url())
    upgrade(engine)
    store = object_store_from_settings(stack)
    store.ensure_buckets(stack.buckets)
    refs = []
    for name, kind, frame in (
        ("training/train.csv", "training", generate(2000, seed=1)),
        ("new_data/drifted.csv", "new_data", generate(1000, seed=15, drift=1.0)),
    ):
        path = tmp_path / name.replace("/", "-")
        frame.to_csv(path, index=False)
        info = store.put_file("landing", name, path)
        refs.append((ObjectRef(bucket="landing", key=name, etag=info.etag, size=info.size), kind))

    celery_app._RUNTIMES.clear()
    app = celery_app.create_worker_app("quality", HANDLERS)
    bus = CeleryBus(app)
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=["quality"],
        shutdown_timeout=30,
    ):
        for number, (ref, kind) in enumerate(refs, 1):
            bus.publish(DataLanded.start_chain(ref.versioned_uri, object=ref, kind=kind))
            # One at a time: the training set must make the baseline before the batch.
            _wait_for_runs(engine, number)
        duplicate = DataLanded.start_chain(
            refs[1][0].versioned_uri, object=refs[1][0], kind="new_data"
        )
        bus.publish(duplicate)  # the same landing again: acknowledged, not redone
        time.sleep(2)
        # The reports follow the verdicts on the same queue. A batch's report includes its
        # Evidently page, whose first render in a worker imports Evidently: tens of seconds on
        # a busy machine, so the wait is generous (a readiness wait, not a timing check).
        deadline = time.monotonic() + 240
        while not all(r.report_uri for r in _wait_for_runs(engine, 2, limit_s=0)):
            assert time.monotonic() < deadline, "the reports were not rendered"
            time.sleep(0.2)
    celery_app._RUNTIMES.clear()

    rows = _wait_for_runs(engine, 2, limit_s=0)
    assert [(r.kind, r.status, r.psi_breached) for r in rows] == [
        ("training", "accepted", False),
        ("new_data", "accepted", True),
    ]
    with engine.connect() as conn:
        psi = dict(
            conn.execute(
                sa.select(feature_psi.c.feature, feature_psi.c.psi).where(
                    feature_psi.c.run_id == rows[1].run_id
                )
            ).all()
        )
        ledger = conn.execute(
            sa.select(processed_events.c.status, processed_events.c.attempts)
        ).all()
    assert psi["monthly_charges"] >= 0.2
    assert sorted(ledger) == [("done", 1)] * 4  # two checks, two reports

    client = redis.Redis.from_url(stack.redis_url)
    scorer = [parse_event(p) for t, p in _queued(client, "scorer")]
    trainer = _queued(client, "trainer")
    # Every subscriber's queue got each follow-up once (the duplicate landing added nothing).
    assert [(e.event_type, e.kind) for e in scorer] == [  # type: ignore[attr-defined]
        ("DataValidated", "training"),
        ("DataValidated", "new_data"),
    ]
    assert len(_queued(client, "monitor")) == 3  # two DataValidated + the PsiBreached alert
    assert [t for t, _ in trainer] == [
        "churnops.trainer.on_data_validated",
        "churnops.trainer.on_data_validated",
        "churnops.trainer.on_psi_breached",
    ]
    breach = parse_event(next(p for t, p in trainer if t.endswith("on_psi_breached")))
    assert breach.quality_run_id == rows[1].run_id  # type: ignore[attr-defined]
    assert "monthly_charges" in breach.features  # type: ignore[attr-defined]
    folder = quality_folder(rows[1].object_key, rows[1].run_id)
    assert store.exists("reports", f"{folder}/report.html")
    assert store.exists("reports", f"{folder}/evidently-drift.html")  # same handler, same pages
    assert rows[1].report_uri == f"s3://reports/{folder}/report.html"
