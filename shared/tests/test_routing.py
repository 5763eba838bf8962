from __future__ import annotations

from churnops_common.events import EVENT_TYPES
from churnops_common.routing import (
    SERVICE_QUEUES,
    SUBSCRIPTIONS,
    subscription_by_task,
    subscriptions_for,
)

# Events that end a chain: published for people and tools, consumed by no stage yet.
TERMINAL: set[str] = set()


def test_every_event_type_has_a_subscriber() -> None:
    routed = {s.event_type for s in SUBSCRIPTIONS}
    assert set(EVENT_TYPES) - TERMINAL <= routed


def test_task_names_are_unique_and_name_their_queue() -> None:
    names = [s.task_name for s in SUBSCRIPTIONS]
    assert len(names) == len(set(names))
    for sub in SUBSCRIPTIONS:
        assert sub.queue in SERVICE_QUEUES
        assert sub.task_name.startswith(f"churnops.{sub.queue}.on_")
        assert subscription_by_task(sub.task_name) == sub


def test_fan_out_matches_the_architecture() -> None:
    def queues(event: str) -> set[str]:
        return {s.queue for s in subscriptions_for(event)}

    assert queues("DataLanded") == {"quality"}
    assert queues("DataValidated") == {"scorer", "monitor", "trainer"}
    assert queues("PsiBreached") >= {"trainer"}
    assert queues("ModelPromoted") >= {"scorer", "quality"}
    assert queues("BatchScored") == {"monitor"}
