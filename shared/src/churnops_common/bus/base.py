"""What a bus does: publish an event to every subscriber in the routing table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from churnops_common.events import Event

if TYPE_CHECKING:
    from churnops_common.runtime import Runtime

# A handler is a plain function: one event in, its follow-up events out.
Handler = Callable[[Event, "Runtime"], Sequence[Event]]


class Bus(Protocol):
    def publish(self, event: Event) -> None:
        """Deliver the event to each subscriber's task (at least once)."""
