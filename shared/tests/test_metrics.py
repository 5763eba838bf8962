"""Metrics counted in one place, and reports that wait behind verdicts on the quality queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from churnops_common.bus.celery_bus import CeleryBus, queue_lists
from churnops_common.celery_app import make_celery
from churnops_common.dispatch import Outcome
from churnops_common.events import BatchScored, DataLanded, ObjectRef, QualityReportRequested
from churnops_common.metrics import (
    QueueCollector,
    record_failure,
    record_outcome,
    worker_metrics,
)
from churnops_common.settings import Settings

REDIS_DB = 9  # this module's own Redis database: only the queue keys below are deleted
REF = ObjectRef(bucket="landing", key="new_data/b.csv", etag="e1", size=10)


@pytest.fixture
def broker(redis_url: str) -> Iterator[str]:
    url = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    keys = [key for queue in ("quality", "scorer") for key in queue_lists(queue)]
    client.delete(*keys)
    yield url
    client.delete(*keys)


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


def _counts(task: str) -> dict[str, float]:
    return {
        "done": _sample("churnops_events_handled_total", task=task, outcome="done"),
        "dead": _sample("churnops_events_dead_lettered_total", task=task),
        "failed": _sample("churnops_events_failed_total", task=task),
        "retried": _sample("churnops_events_retried_total", task=task),
        "rows": _sample("churnops_rows_scored_total"),
        "timed": _sample("churnops_handler_duration_seconds_count", task=task),
    }


def test_a_waiting_verdict_is_taken_before_a_waiting_report(broker: str) -> None:
    app = make_celery("metrics-test", Settings(redis_url=broker))
    bus = CeleryBus(app)
    landed = DataLanded.start_chain("k", object=REF, kind="new_data")
    # The report was asked for first, the next file landed after it.
    bus.publish(landed.derive(QualityReportRequested, quality_run_id="q-1", object=REF, input=REF))
    bus.publish(landed)
    client = redis.Redis.from_url(broker)
    assert [client.llen(key) for key in queue_lists("quality")] == [1, 0, 0, 1]
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue("quality")
        first, second = queue.get(timeout=2), queue.get(timeout=2)
        taken = [m.headers["task"] for m in (first, second)]
        for message in (first, second):
            message.ack()
        queue.close()
    assert taken == [
        "churnops.quality.on_data_landed",
        "churnops.quality.on_quality_report_requested",
    ]
    depth = {
        sample.labels["queue"]: sample.value
        for family in QueueCollector(client, "minio:events").collect()
        for sample in family.samples
        if family.name == "churnops_queue_depth"
    }
    assert depth["quality"] == 0


def test_outcomes_are_counted_per_task() -> None:
    task = "churnops.scorer.on_data_validated"
    metrics = worker_metrics()
    before = _counts(task)
    scored = BatchScored(
        input=REF,
        predictions=REF,
        scoring_run_id="s-1",
        model_name="m",
        model_version="3",
        rows=250,
    )
    record_outcome(task, Outcome("done", followups=[scored]), 0.2, engine=None)
    record_outcome(task, Outcome("dead_lettered", detail="bad"), 0.01, engine=None)
    record_failure(task, 0.05, retrying=True)
    assert metrics is worker_metrics()  # made once per process
    after = _counts(task)
    assert {k: after[k] - before[k] for k in before} == {
        "done": 1,
        "dead": 1,
        "failed": 2,  # the dead letter and the retried attempt
        "retried": 1,
        "rows": 250,
        "timed": 3,
    }
