"""Publishing over Celery by task name: producers need no service code, only the routing table."""

from __future__ import annotations

import logging

from celery import Celery

from churnops_common.events import Event, stable_id, to_wire
from churnops_common.routing import subscription_by_task, subscriptions_for

log = logging.getLogger(__name__)

# kombu's Redis transport keeps a queue's prioritised messages in lists beside it (default
# steps 0, 3, 6, 9; step 0 is the queue's own list): what is waiting is the sum of all four.
_PRIORITY_STEPS = (3, 6, 9)
_PRIORITY_SEP = "\x06\x16"


def queue_lists(queue: str) -> list[str]:
    """The Redis lists that hold a queue's waiting messages, highest priority first."""
    return [queue, *(f"{queue}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS)]


class CeleryBus:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def publish(self, event: Event) -> None:
        for sub in subscriptions_for(event):
            self.publish_to(event, sub.task_name)

    def publish_to(self, event: Event, task_name: str) -> None:
        """Deliver to one subscriber only (a replay of what that task parked)."""
        sub = subscription_by_task(task_name)
        # A task id fixed by (event, task): a re-published event is recognisable in Flower.
        self.app.send_task(
            sub.task_name,
            args=[to_wire(event)],
            queue=sub.queue,
            priority=sub.priority,
            task_id=stable_id(event.event_id, sub.task_name),
        )
        log.info("published %s %s -> %s", event.event_type, event.event_id, sub.task_name)
