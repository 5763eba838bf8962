"""Embedded mode's bus: the same handlers, run one by one from a FIFO queue in this process."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from churnops_common.events import Event, to_wire
from churnops_common.handling import Handler
from churnops_common.routing import subscriptions_for

if TYPE_CHECKING:
    from churnops_common.dispatch import Outcome
    from churnops_common.runtime import Runtime

log = logging.getLogger(__name__)


class LocalBus:
    """Queues (task, payload) pairs; `run_until_idle` delivers them in publication order."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self.handlers = dict(handlers)
        self.pending: deque[tuple[str, dict[str, Any]]] = deque()
        self.published: list[Event] = []
        self.unrouted: list[str] = []  # event types with no subscriber in this process

    def publish(self, event: Event) -> None:
        self.published.append(event)
        subscribers = [s for s in subscriptions_for(event) if s.task_name in self.handlers]
        if not subscribers:
            self.unrouted.append(event.event_type)
        for sub in subscribers:
            self.publish_to(event, sub.task_name)

    def publish_to(self, event: Event, task_name: str) -> None:
        """Queue for one subscriber only (a replay of what that task parked)."""
        # The wire form, as Celery would carry it: handlers see exactly what workers see.
        self.pending.append((task_name, to_wire(event)))

    def run_until_idle(
        self,
        runtime: Runtime,
        *,
        max_messages: int = 10_000,
        on_outcome: Callable[[str, Outcome], None] | None = None,
    ) -> int:
        from churnops_common.dispatch import handle_message

        delivered = 0
        while self.pending:
            if delivered >= max_messages:
                raise RuntimeError(f"more than {max_messages} messages: an event loop?")
            task_name, payload = self.pending.popleft()
            outcome = handle_message(
                task_name, payload, self.handlers[task_name], runtime, final_attempt=True
            )
            delivered += 1
            if on_outcome is not None:
                on_outcome(task_name, outcome)
        return delivered
