"""The one routing table: which task, on which queue, handles each event type.

Producers (the bridge, Airflow, the CLI) publish by task name with `send_task` and never import
service code; workers register a handler under each task name of their queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from churnops_common.events import EVENT_TYPES, Event, event_type_of

QUALITY, TRAINER, SCORER, MONITOR = "quality", "trainer", "scorer", "monitor"
INGEST = "ingest"
SERVICE_QUEUES: tuple[str, ...] = (QUALITY, TRAINER, SCORER, MONITOR, INGEST)
# Message priority on a queue (Redis: 0 is taken first, 9 last). Work only people wait for
# goes last, so a waiting verdict is never taken after a waiting report.
DEFAULT_PRIORITY, LOW_PRIORITY = 0, 9


@dataclass(frozen=True, slots=True)
class Subscription:
    event_type: str
    task_name: str
    queue: str
    priority: int = DEFAULT_PRIORITY


def _sub(event_type: str, queue: str, priority: int = DEFAULT_PRIORITY) -> Subscription:
    if event_type not in EVENT_TYPES:
        raise KeyError(f"unknown event type {event_type!r} in the routing table")
    return Subscription(event_type, f"churnops.{queue}.on_{_snake(event_type)}", queue, priority)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    _sub("DataLanded", QUALITY),
    _sub("SweepRequested", QUALITY),
    _sub("QualityRequested", QUALITY),
    _sub("QualityReportRequested", QUALITY, LOW_PRIORITY),  # the report, after any verdict
    _sub("DataValidated", SCORER),  # new_data: score it
    _sub("DataValidated", MONITOR),  # labels: join to predictions
    _sub("DataValidated", TRAINER),  # training: a new training set
    _sub("ModelPromoted", SCORER),  # hot swap, optional rescore
    _sub("ScoreChunkRequested", SCORER),  # one chunk of a large batch
    _sub("ModelPromoted", QUALITY),  # refresh the baseline profile
    _sub("ModelPromoted", MONITOR),  # alert
    _sub("PsiBreached", TRAINER),
    _sub("PsiBreached", MONITOR),  # alert
    _sub("RetrainRequested", TRAINER),
    _sub("PerformanceDegraded", TRAINER),
    _sub("TrialsRequested", TRAINER),  # trials of a running training's search
    _sub("PerformanceDegraded", MONITOR),  # alert
    _sub("BatchScored", MONITOR),
    _sub("DataRejected", MONITOR),  # alert
    _sub("ModelRejected", MONITOR),  # audit/alert
    _sub("MonitoringRequested", MONITOR),
    _sub("IngestRequested", INGEST),  # lands a snapshot; MinIO (or the handler) announces it
    _sub("IntegrityFailed", MONITOR),  # alert
)


def subscriptions_for(event: Event | type[Event] | str) -> tuple[Subscription, ...]:
    """Every subscriber of an event type (possibly none)."""
    if isinstance(event, str):
        name = event
    elif isinstance(event, Event):
        name = event.event_type
    else:
        name = event_type_of(event)
    return tuple(s for s in SUBSCRIPTIONS if s.event_type == name)


def subscriptions_of_queue(queue: str) -> tuple[Subscription, ...]:
    return tuple(s for s in SUBSCRIPTIONS if s.queue == queue)


def subscription_by_task(task_name: str) -> Subscription:
    for sub in SUBSCRIPTIONS:
        if sub.task_name == task_name:
            return sub
    raise KeyError(f"no subscription has task name {task_name!r}")
