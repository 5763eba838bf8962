"""What a bus does: publish an event to every subscriber in the routing table."""

from __future__ import annotations

from typing import Protocol

from churnops_common.events import Event


class Bus(Protocol):
    def publish(self, event: Event) -> None:
        """Deliver the event to each subscriber's task (at least once)."""
