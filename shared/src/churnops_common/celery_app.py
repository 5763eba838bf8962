"""Celery apps: one producer app (publish only) and one worker app per service queue.

Reliability settings (docs/adr/0001-at-least-once-with-a-ledger.md): late acks, requeue when a
worker dies, prefetch 1, a visibility timeout above the longest task, explicit queues only, JSON
only, retries with exponential backoff on transient I/O for a time budget, a dead-letter row once
it is spent (a message whose outcome cannot be recorded is never acked), and a time limit per
queue, so that a worker's warm shutdown ends within a known time.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Mapping
from typing import Any

from celery import Celery, Task
from celery.signals import worker_init, worker_process_init, worker_process_shutdown
from kombu import Queue  # type: ignore[attr-defined]

from churnops_common.bus.celery_bus import CeleryBus
from churnops_common.dispatch import handle_message
from churnops_common.errors import is_transient
from churnops_common.handling import Handler
from churnops_common.metrics import (
    record_failure,
    record_outcome,
    serve_worker_metrics,
    worker_process_exited,
)
from churnops_common.routing import SERVICE_QUEUES, TRAINER, subscriptions_of_queue
from churnops_common.settings import ConfigError, Settings, get_settings

log = logging.getLogger(__name__)


def make_celery(name: str, settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery(name, broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A task that failed for good was dead-lettered by the handler path; ack it.
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.task_visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        task_queues=[Queue(q) for q in SERVICE_QUEUES],  # type: ignore[no-untyped-call]
        task_create_missing_queues=False,
        task_default_queue=SERVICE_QUEUES[0],
        worker_hijack_root_logger=False,
        enable_utc=True,
        timezone="UTC",
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    return app


def backoff_seconds(retries: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter: 2, 4, 8 ... seconds, capped."""
    return random.uniform(0, min(cap, base * 2**retries))


_RUNTIMES: dict[str, Any] = {}


def worker_runtime(app: Celery) -> Any:
    """The worker process's Runtime, built lazily after fork (no I/O at import time)."""
    from churnops_common.runtime import Runtime

    runtime = _RUNTIMES.get(app.main)
    if runtime is None:
        runtime = Runtime.from_settings(get_settings(), CeleryBus(app))
        _RUNTIMES[app.main] = runtime
    return runtime


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _reset_after_fork(**_: Any) -> None:
    # Connections must not be shared with the parent process.
    _RUNTIMES.clear()


def time_limits_s(queue: str, settings: Settings) -> tuple[int, int]:
    """(soft, hard) time limit of one task on a queue.

    The soft limit raises inside the task, which parks it in the dead letters; the hard limit
    kills the pool process if the task does not return (native code ignores the soft one).
    Both stay under the visibility timeout, or Redis would hand a running task to another worker.
    """
    hard = settings.training_time_limit_s if queue == TRAINER else settings.task_time_limit_s
    if hard >= settings.task_visibility_timeout_s:
        raise ConfigError(
            f"the {queue} time limit ({hard} s) must be below TASK_VISIBILITY_TIMEOUT_S "
            f"({settings.task_visibility_timeout_s} s), or a running task is redelivered"
        )
    return hard - max(60, hard // 10), hard


@worker_init.connect  # type: ignore[untyped-decorator]
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    # The main process, before the pool forks: the pool's processes inherit the metrics folder.
    app = getattr(sender, "app", None)
    tasks = [name for name in (app.tasks if app else ()) if name.startswith("churnops.")]
    serve_worker_metrics(get_settings(), tasks)


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _pool_process_exited(pid: int | None = None, **_: Any) -> None:
    worker_process_exited(pid or os.getpid())


def create_worker_app(queue: str, handlers: Mapping[str, Handler]) -> Celery:
    """A Celery app for one service queue with one task per subscription in the routing table."""
    subs = {s.task_name: s for s in subscriptions_of_queue(queue)}
    unknown = set(handlers) - set(subs)
    if unknown:
        raise KeyError(f"handlers for tasks not routed to queue {queue!r}: {sorted(unknown)}")
    app = make_celery(f"churnops-{queue}")
    app.conf.task_soft_time_limit, app.conf.task_time_limit = time_limits_s(queue, get_settings())
    for task_name, handler in handlers.items():
        _register(app, task_name, handler)
    return app


def _register(app: Celery, task_name: str, handler: Handler) -> None:
    budget_s = get_settings().task_retry_budget_s

    # shared=False: a shared task is also registered on every app created later in the same
    # process (tests, embedded runs), where it would shadow that app's own handler.
    # max_retries=None: retries are bounded by time (TASK_RETRY_BUDGET_S), not by a count, so
    # an outage shorter than the budget loses nothing, however many attempts it takes.
    @app.task(  # type: ignore[untyped-decorator]
        name=task_name, bind=True, max_retries=None, shared=False
    )
    def run(self: Task, payload: Any, first_attempt_at: float | None = None) -> str:
        first = first_attempt_at if first_attempt_at is not None else time.time()
        attempt = self.request.retries + 1
        started = time.perf_counter()
        try:
            runtime = worker_runtime(app)
            outcome = handle_message(
                task_name,
                payload,
                handler,
                runtime,
                final_attempt=time.time() - first >= budget_s,
                attempt=attempt,
            )
        except Exception as exc:
            # A transient error inside the budget, or a message whose outcome could not be
            # recorded (its dead letter did not write: Postgres is down): never acked, tried
            # again later. Acking it would lose it.
            if not is_transient(exc):
                log.critical("%s: could not record the outcome, retrying: %s", task_name, exc)
            record_failure(task_name, time.perf_counter() - started, retrying=True)
            raise self.retry(
                exc=exc,
                countdown=backoff_seconds(self.request.retries),
                args=(payload,),
                kwargs={"first_attempt_at": first},
            ) from exc
        record_outcome(task_name, outcome, time.perf_counter() - started, runtime.engine)
        return outcome.status
