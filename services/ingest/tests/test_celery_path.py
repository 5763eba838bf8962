"""The worker path: IngestRequested over real Redis to a real ingest worker, S3 via moto.

The worker lands the Postgres table in the S3 landing bucket and announces it to quality; the
same request again is acknowledged and lands nothing new.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
import sqlalchemy as sa

from churnops_common.bus.celery_bus import CeleryBus
from churnops_common.db.engine import make_engine
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import processed_events
from churnops_common.events import DataLanded, IngestRequested, parse_event
from churnops_common.settings import Settings, get_settings
from churnops_common.storage import object_store_from_settings

pytestmark = pytest.mark.services

REDIS_DB = 11  # private to this test; only the queue keys it fills are deleted afterwards
QUEUES = ("ingest", "quality")


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    postgres_url: str,
    moto_endpoint: str,
    tmp_path: Path,
) -> Iterator[Settings]:
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n  crm:\n    kind: new_data\n"
        "    sql: {url_env: WAREHOUSE_URL, query: SELECT * FROM customers}\n",
        encoding="utf-8",
    )
    broker = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    env = {
        "CHURNOPS_MODE": "stack",
        "REDIS_URL": broker,
        "MONITORING_DB_URL": postgres_url,
        "MINIO_ENDPOINT": moto_endpoint,
        "MINIO_REGION": "us-east-1",
        "MINIO_ROOT_USER": "ingest-test-user",
        "MINIO_ROOT_PASSWORD": "ingest-test-pass",
        "POSTGRES_PASSWORD": "ingest-test-pg",
        "INGEST_SOURCES_FILE": str(sources),
        "INGEST_BATCH_ROWS": "400",
        "WAREHOUSE_URL": postgres_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    client = redis.Redis.from_url(broker)
    client.delete(*QUEUES)
    yield get_settings()
    client.delete(*QUEUES)
    get_settings.cache_clear()


def _queued(client: redis.Redis, queue: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # kombu pushes on the left
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        found.append((message["headers"]["task"], args[0]))
    return found


def _wait_done(engine: sa.Engine, count: int, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    query = sa.select(sa.func.count()).where(processed_events.c.status == "done")
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(query).scalar_one() >= count:
                return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} handled events after {limit_s}s")


def test_a_request_lands_the_table_in_s3_once_and_announces_it(
    stack: Settings, warehouse: Callable[..., pd.DataFrame]
) -> None:
    from celery.contrib.testing.worker import start_worker

    from churnops_common import celery_app
    from churnops_ingest.handlers import HANDLERS

    warehouse("customers", 1_000)
    engine = make_engine(stack.monitoring_url())
    upgrade(engine)
    store = object_store_from_settings(stack)
    store.ensure_buckets(stack.buckets)

    celery_app._RUNTIMES.clear()
    app = celery_app.create_worker_app("ingest", HANDLERS)
    bus = CeleryBus(app)
    day = date(2026, 12, 1)
    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, queues=["ingest"],
        shutdown_timeout=30,
    ):  # fmt: skip
        bus.publish(IngestRequested.start_chain("run-1", source="crm", logical_date=day))
        _wait_done(engine, 1)
        # Another run of the same schedule (a new event): the same snapshot, nothing written.
        bus.publish(IngestRequested.start_chain("run-2", source="crm", logical_date=day))
        _wait_done(engine, 2)
    celery_app._RUNTIMES.clear()

    (landed,) = list(store.list_objects("landing"))
    assert landed.key.startswith("new_data/crm/2026-12-01-") and landed.key.endswith(".parquet")
    with store.local_path("landing", landed.key) as path:
        assert len(pd.read_parquet(path)) == 1_000
    announced = [
        parse_event(p) for _, p in _queued(redis.Redis.from_url(stack.redis_url), "quality")
    ]
    assert [type(e) for e in announced] == [DataLanded, DataLanded]
    # Both announce the same object version: quality's ledger handles it once.
    assert {e.idempotency_key for e in announced} == {f"landing/{landed.key}@{landed.etag}"}
