"""A handler's contract in code: the event type it takes, the task name it answers to.

A handler is a plain function: one event in, its follow-up events out. The dispatcher has
already checked the payload against the task's event type; `expect` narrows the event for the
type checker and, should a handler be registered under the wrong task, refuses the message as
a bad one (a PermanentError, so it is parked in the dead letters) instead of an `assert` that
`python -O` strips. `handlers_of` builds a queue's task table from the routing table, so a
task name is written in one place only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from churnops_common.errors import PermanentError
from churnops_common.events import Event, event_type_of
from churnops_common.routing import subscriptions_of_queue

if TYPE_CHECKING:
    from churnops_common.runtime import Runtime

Handler = Callable[[Event, "Runtime"], Sequence[Event]]


class UnexpectedEvent(PermanentError):
    """A handler got an event of another type than the one it is written for."""


def expect[E: Event](event: Event, event_type: type[E]) -> E:
    """The event as the type the handler takes; UnexpectedEvent when it is another type."""
    if not isinstance(event, event_type):
        raise UnexpectedEvent(f"expected {event_type.__name__}, got {event.event_type}")
    return event


def handlers_of(queue: str, by_event: Mapping[type[Event], Handler]) -> dict[str, Handler]:
    """task name -> handler for a queue: one handler for each event type routed to it.

    Raises LookupError when the two disagree (a handler for an event the queue is not routed,
    or a routed event with no handler), so a worker never starts with a route it cannot serve.
    """
    handlers = {event_type_of(cls): handler for cls, handler in by_event.items()}
    routed = {sub.event_type: sub.task_name for sub in subscriptions_of_queue(queue)}
    if missing := sorted(routed.keys() - handlers.keys()):
        raise LookupError(f"queue {queue!r} is routed {missing} but has no handler for them")
    if unrouted := sorted(handlers.keys() - routed.keys()):
        raise LookupError(f"queue {queue!r} has handlers for {unrouted}, which are not routed")
    return {routed[name]: handler for name, handler in handlers.items()}
