"""Prometheus metrics of the workers and the bridge: what operators watch over time.

Workers (Celery prefork) count in prometheus-client's multiprocess mode: every pool process
writes its samples to files in `PROMETHEUS_MULTIPROC_DIR` and the worker's main process serves
their sum on `METRICS_PORT`. The directory is chosen (and emptied) by the main process before
the pool forks, and prometheus-client is imported only after that, since it picks its value
store at import time. The bridge is one process: it serves the platform's state instead, read
at scrape time from Redis (queue depths, its backlog) and the monitoring schema (PSI of the
latest batch, the champion, realized PR-AUC, the last batch scored and file landed).

Label sets stay bounded: task names and queues come from the routing table, outcomes from
dispatch, features from the model's schema; never file names, ids or event ids.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

from churnops_common.events import BatchScored

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram
    from redis import Redis

    from churnops_common.bridge import Bridge
    from churnops_common.dispatch import Outcome
    from churnops_common.settings import Settings

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Handler durations: from a few milliseconds (an alert) to an hour (a training).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
LATENCY_BUCKETS = (0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 900)


@dataclass(frozen=True)
class WorkerMetrics:
    handled: Counter
    failed: Counter
    retried: Counter
    dead_lettered: Counter
    duration: Histogram
    landing_to_predictions: Histogram
    rows_scored: Counter


@cache
def worker_metrics() -> WorkerMetrics:
    """The worker's metric objects, made on first use (after the multiprocess directory is set)."""
    from prometheus_client import Counter, Histogram

    return WorkerMetrics(
        handled=Counter(
            "churnops_events_handled",
            "Events a task finished with, by outcome (done, skipped as a duplicate).",
            ["task", "outcome"],
        ),
        failed=Counter(
            "churnops_events_failed",
            "Attempts that did not succeed: each ends in a retry or a dead letter.",
            ["task"],
        ),
        retried=Counter("churnops_events_retried", "Retries scheduled by a task.", ["task"]),
        dead_lettered=Counter(
            "churnops_events_dead_lettered",
            "Messages parked in monitoring.dead_letters (or dropped when even that failed).",
            ["task"],
        ),
        duration=Histogram(
            "churnops_handler_duration_seconds",
            "Time from taking a message to its outcome, per task.",
            ["task"],
            buckets=DURATION_BUCKETS,
        ),
        landing_to_predictions=Histogram(
            "churnops_landing_to_predictions_seconds",
            "From the quality worker taking a landed file (its DataLanded ledger row) to"
            " BatchScored being announced.",
            buckets=LATENCY_BUCKETS,
        ),
        rows_scored=Counter("churnops_rows_scored", "Rows scored (rescores included)."),
    )


# ---- the hook: celery_app calls these around every message ----------------------------------
def record_outcome(task: str, outcome: Outcome, seconds: float, engine: Engine | None) -> None:
    """Count one handled message; never raises (metrics must not fail a handler)."""
    try:
        metrics = worker_metrics()
        metrics.duration.labels(task).observe(seconds)
        if outcome.status == "dead_lettered":  # an invalid payload or a final failure
            metrics.failed.labels(task).inc()
            metrics.dead_lettered.labels(task).inc()
        else:
            metrics.handled.labels(task, outcome.status).inc()
        for followup in outcome.followups:
            if isinstance(followup, BatchScored):
                _scored(metrics, followup, engine)
    except Exception as exc:
        log.warning("metrics of %s not recorded: %s", task, exc)


def record_failure(task: str, seconds: float, *, retrying: bool, parked: bool = False) -> None:
    try:
        metrics = worker_metrics()
        metrics.duration.labels(task).observe(seconds)
        metrics.failed.labels(task).inc()
        if retrying:
            metrics.retried.labels(task).inc()
        if parked:
            metrics.dead_lettered.labels(task).inc()
    except Exception as exc:
        log.warning("metrics of %s not recorded: %s", task, exc)


def _scored(metrics: WorkerMetrics, scored: BatchScored, engine: Engine | None) -> None:
    metrics.rows_scored.inc(scored.rows)
    landed = landed_at(engine, scored.correlation_id) if engine is not None else None
    if landed is not None:  # a rescore after a promotion has no landing in its chain
        seconds = (scored.occurred_at - landed).total_seconds()
        metrics.landing_to_predictions.observe(max(0.0, seconds))


def landed_at(engine: Engine, correlation_id: str) -> datetime | None:
    """When the quality worker took the landed file that started this chain (the ledger)."""
    query = text(
        "SELECT min(started_at) FROM monitoring.processed_events "
        "WHERE correlation_id = :c AND event_type = 'DataLanded'"
    )
    if engine.dialect.name == "sqlite":
        query = text(query.text.replace("monitoring.", ""))
    with engine.connect() as conn:
        value = conn.execute(query, {"c": correlation_id}).scalar()
    if isinstance(value, str):  # SQLite keeps text
        value = datetime.fromisoformat(value)
    return value if isinstance(value, datetime) else None


# ---- serving ---------------------------------------------------------------------------------
def prepare_multiprocess_dir() -> Path:
    """The directory the pool processes write to: $PROMETHEUS_MULTIPROC_DIR (emptied: counts
    start at zero with the worker), else a fresh private one. Call before the pool forks."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        folder = Path(configured)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="churnops-metrics-"))
        os.environ[MULTIPROC_ENV] = str(folder)
    if "prometheus_client.values" in sys.modules:  # imported early: switch its value store now
        from prometheus_client import values

        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return folder


def serve_worker_metrics(settings: Settings, tasks: Iterable[str] = ()) -> int | None:
    """In a worker's main process, before the pool forks: serve the pool's summed metrics.

    Every series of `tasks` starts at zero (so a rule's `increase()` sees the first event, and
    the page names every metric before anything happened).
    """
    if not settings.metrics_port:
        return None
    folder = prepare_multiprocess_dir()
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    metrics = worker_metrics()
    for task in tasks:
        for outcome in ("done", "skipped"):
            metrics.handled.labels(task, outcome)
        for counter in (metrics.failed, metrics.retried, metrics.dead_lettered):
            counter.labels(task)
        metrics.duration.labels(task)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    start_http_server(settings.metrics_port, addr=settings.metrics_bind, registry=registry)
    log.info("metrics on %s:%d/metrics", settings.metrics_bind, settings.metrics_port)
    return settings.metrics_port


def worker_process_exited(pid: int) -> None:
    """A pool process is gone: drop its live gauges (its counters still count)."""
    if os.environ.get(MULTIPROC_ENV) and "prometheus_client" in sys.modules:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def serve_bridge_metrics(settings: Settings, bridge: Bridge, engine: Engine) -> int | None:
    """The bridge's own counts and the platform's state, read when Prometheus scrapes."""
    if not settings.metrics_port:
        return None
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(BridgeCollector(bridge))
    registry.register(QueueCollector(bridge.redis, bridge.source_key))
    registry.register(PlatformCollector(engine, settings.mlflow_model_name))
    start_http_server(settings.metrics_port, addr=settings.metrics_bind, registry=registry)
    log.info("metrics on %s:%d/metrics", settings.metrics_bind, settings.metrics_port)
    return settings.metrics_port


class BridgeCollector:
    """Notifications taken, events published, elements parked or re-driven by this bridge."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        stats = self.bridge.stats
        for name, value, what in (
            ("elements", stats.elements, "Notification elements taken from MinIO's list."),
            ("published", stats.published, "DataLanded events published."),
            ("parked", stats.parked, "Malformed notifications parked."),
            ("redriven", stats.redriven, "Elements re-driven after a crash."),
        ):
            yield CounterMetricFamily(f"churnops_bridge_{name}", what, value=value)


class QueueCollector:
    """Messages waiting per service queue, and notifications waiting for the bridge."""

    def __init__(self, redis: Redis, source_key: str) -> None:
        self.redis = redis
        self.source_key = source_key

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from churnops_common.bus.celery_bus import queue_lists
        from churnops_common.routing import SERVICE_QUEUES

        depth = GaugeMetricFamily(
            "churnops_queue_depth", "Messages waiting in a service queue.", labels=["queue"]
        )
        backlog = GaugeMetricFamily(
            "churnops_bridge_backlog",
            "Notification elements waiting for the bridge (list and processing list).",
        )
        try:
            pipe = self.redis.pipeline()
            for queue in SERVICE_QUEUES:
                for key in queue_lists(queue):
                    pipe.llen(key)
            pipe.llen(self.source_key)
            pipe.llen(f"{self.source_key}:processing")
            *lengths, waiting, processing = pipe.execute()
        except Exception as exc:  # Redis away: no sample (the alert on `up` covers it)
            log.warning("queue depths not read: %s", exc)
            return
        per_queue = len(lengths) // len(SERVICE_QUEUES)
        for n, queue in enumerate(SERVICE_QUEUES):
            depth.add_metric([queue], float(sum(lengths[n * per_queue : (n + 1) * per_queue])))
        backlog.add_metric([], float(waiting + processing))
        yield depth
        yield backlog


# What the monitoring schema says now. Each query returns (label or NULL, value) rows.
PLATFORM_QUERIES: dict[str, tuple[str, str, str | None]] = {
    "churnops_feature_psi": (
        "PSI per feature of the latest quality run of new data.",
        "SELECT f.feature, f.psi FROM monitoring.feature_psi f WHERE f.run_id = ("
        "SELECT q.run_id FROM monitoring.quality_runs q WHERE q.kind = 'new_data' AND "
        "q.status = 'accepted' AND q.max_psi IS NOT NULL ORDER BY q.created_at DESC LIMIT 1)",
        "feature",
    ),
    "churnops_champion_version": (
        "Version of the model promoted last (the champion).",
        "SELECT NULL, CAST(challenger_version AS DOUBLE PRECISION) FROM "
        "monitoring.model_promotions WHERE decision = 'promoted' AND model_name = :model "
        "ORDER BY decided_at DESC LIMIT 1",
        None,
    ),
    "churnops_realized_pr_auc": (
        "PR-AUC of the champion on its latest labelled outcomes.",
        "SELECT NULL, p.pr_auc FROM monitoring.performance_metrics p WHERE p.model_name = :model"
        " AND p.pr_auc IS NOT NULL AND p.model_version = (SELECT challenger_version FROM "
        "monitoring.model_promotions WHERE decision = 'promoted' AND model_name = :model "
        "ORDER BY decided_at DESC LIMIT 1) ORDER BY p.computed_at DESC LIMIT 1",
        None,
    ),
    "churnops_estimated_pr_auc": (
        "PR-AUC of the champion on its latest scored batch, estimated before any label.",
        "SELECT NULL, e.value FROM monitoring.performance_estimates e WHERE e.metric = 'pr_auc'"
        " AND e.model_name = :model AND e.value IS NOT NULL AND e.model_version = (SELECT "
        "challenger_version FROM monitoring.model_promotions WHERE decision = 'promoted' AND "
        "model_name = :model ORDER BY decided_at DESC LIMIT 1) ORDER BY e.estimated_at DESC "
        "LIMIT 1",
        None,
    ),
    "churnops_last_batch_scored_timestamp_seconds": (
        "When the latest batch was scored (Unix time).",
        "SELECT NULL, EXTRACT(EPOCH FROM max(created_at)) FROM monitoring.scoring_runs",
        None,
    ),
    "churnops_last_file_landed_timestamp_seconds": (
        "When the latest file of new data was checked (Unix time).",
        "SELECT NULL, EXTRACT(EPOCH FROM max(created_at)) FROM monitoring.quality_runs "
        "WHERE kind = 'new_data'",
        None,
    ),
}


class PlatformCollector:
    """The platform's state from the monitoring schema (Postgres), read at scrape time."""

    def __init__(self, engine: Engine, model_name: str) -> None:
        self.engine = engine
        self.model_name = model_name

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        for name, (what, sql, label) in PLATFORM_QUERIES.items():
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(text(sql), {"model": self.model_name}).all()
            except Exception as exc:  # Postgres away, or a version that is not a number
                log.warning("%s not read: %s", name, f"{type(exc).__name__}: {exc}"[:200])
                continue
            family = GaugeMetricFamily(name, what, labels=[label] if label else [])
            for key, value in rows:
                if value is not None:
                    family.add_metric([str(key)] if label else [], float(value))
            yield family
