"""The Celery task path: a real scorer worker over real Redis, the monitoring tables in Postgres.

DataValidated goes over Redis to the worker, which loads the champion from the registry, scores,
writes the outputs, records the run in Postgres and publishes BatchScored to the monitor's queue.
The same event sent twice is acknowledged once and scored once.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from churnops_common.bus.celery_bus import CeleryBus
from churnops_common.db.engine import make_engine
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import processed_events, scoring_runs
from churnops_common.events import DataValidated, ObjectRef, parse_event
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.settings import Settings, get_settings
from churnops_common.storage import object_store_from_settings

from .conftest import batch_file, register_champion

pytestmark = pytest.mark.services

REDIS_DB = 8  # private to the scorer's tests; only the queue keys below are deleted
QUEUES = ("quality", "scorer", "monitor", "trainer")


@pytest.fixture
def worker_settings(
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    postgres_url: str,
    tmp_path: Path,
    mlflow_uri: str,
) -> Iterator[Settings]:
    broker = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    env = {
        "REDIS_URL": broker,
        "MONITORING_DB_URL": postgres_url,
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MLFLOW_MODEL_NAME": "churn-celery",
        "CHURNOPS_HOME": str(tmp_path / "home"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    client = redis.Redis.from_url(broker)
    client.delete(*QUEUES)
    yield get_settings()
    client.delete(*QUEUES)
    get_settings.cache_clear()


def _wait_for_runs(engine: sa.Engine, count: int, limit_s: float = 90) -> list[sa.Row]:  # type: ignore[type-arg]
    deadline = time.monotonic() + limit_s
    while True:
        with engine.connect() as conn:
            rows = list(conn.execute(sa.select(scoring_runs)))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_a_batch_scored_by_a_real_worker(
    worker_settings: Settings, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    from celery.contrib.testing.worker import start_worker

    from churnops_common import celery_app
    from churnops_scorer.handlers import HANDLERS

    settings = worker_settings
    engine = make_engine(settings.monitoring_url())
    upgrade(engine)
    store = object_store_from_settings(settings)
    store.ensure_buckets(settings.buckets)
    version = register_champion(settings, pipeline, None)
    info = store.put_file("landing", "new_data/celery.csv", batch_file(tmp_path, 300, seed=31))
    ref = ObjectRef(bucket="landing", key=info.key, etag=info.etag, size=info.size)
    event = DataValidated.start_chain(
        ref.versioned_uri, object=ref, kind="new_data", quality_run_id="q-celery", rows=300
    )

    celery_app._RUNTIMES.clear()
    app = celery_app.create_worker_app("scorer", HANDLERS)
    bus = CeleryBus(app)
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=["scorer"],
        shutdown_timeout=30,
    ):
        bus.publish(event)
        (run,) = _wait_for_runs(engine, 1)
        bus.publish(event)  # delivered twice: acknowledged, not scored again
        time.sleep(2)
    celery_app._RUNTIMES.clear()

    assert (run.rows, run.model_version, run.input_etag) == (300, version, ref.etag)
    assert len(_wait_for_runs(engine, 2, limit_s=0)) == 1
    with engine.connect() as conn:
        ledger = conn.execute(sa.select(processed_events.c.status)).scalars().all()
    assert ledger == ["done"]
    client = redis.Redis.from_url(settings.redis_url)
    queued = [json.loads(raw) for raw in client.lrange("monitor", 0, -1)]
    published = [parse_event(json.loads(base64.b64decode(m["body"]))[0][0]) for m in queued]
    scored = [e for e in published if e.event_type == "BatchScored"]
    assert len(scored) == 1 and scored[0].predictions.uri == run.predictions_uri  # type: ignore[attr-defined]
    assert store.exists("predictions", run.predictions_uri.split("/", 3)[3])
