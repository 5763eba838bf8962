"""Handler contracts: `expect` refuses another event type as a bad message (parked, not
retried, and not stripped by `python -O`); `handlers_of` takes task names from the routing
table and refuses a table that disagrees with it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from churnops_common.bus.local_bus import LocalBus
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import dead_letters
from churnops_common.dispatch import handle_message
from churnops_common.errors import PermanentError, is_transient
from churnops_common.events import (
    DataLanded,
    Event,
    MonitoringRequested,
    RetrainRequested,
    SweepRequested,
    to_wire,
)
from churnops_common.handling import UnexpectedEvent, expect, handlers_of
from churnops_common.routing import QUALITY, TRAINER, subscriptions_of_queue, task_name
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings


def _none(event: Event, runtime: Runtime) -> list[Event]:
    return []


def test_expect_returns_the_event_as_its_type() -> None:
    event: Event = RetrainRequested(reason="manual")
    assert expect(event, RetrainRequested) is event


def test_expect_refuses_another_type_as_a_permanent_error() -> None:
    with pytest.raises(UnexpectedEvent, match="expected RetrainRequested, got MonitoringRequested"):
        expect(MonitoringRequested(), RetrainRequested)
    assert issubclass(UnexpectedEvent, PermanentError)
    assert not is_transient(UnexpectedEvent("x"))


def test_a_handler_given_the_wrong_event_is_dead_lettered(embedded_settings: Settings) -> None:
    """A handler registered under the wrong task: its message is parked on the first attempt."""
    retrain_task = task_name(TRAINER, RetrainRequested)

    def wrongly_registered(event: Event, runtime: Runtime) -> list[Event]:
        expect(event, MonitoringRequested)
        return []

    runtime = Runtime.from_settings(embedded_settings, LocalBus({}))
    upgrade(runtime.engine)
    payload = to_wire(RetrainRequested(reason="manual"))
    outcome = handle_message(
        retrain_task, payload, wrongly_registered, runtime, final_attempt=False
    )
    assert outcome.status == "dead_lettered"
    assert "UnexpectedEvent: expected MonitoringRequested" in outcome.detail
    with runtime.engine.connect() as conn:
        [row] = conn.execute(sa.select(dead_letters)).all()
    assert row.task_name == retrain_task


def test_handlers_of_takes_task_names_from_the_routing_table() -> None:
    by_event = {s.event_type: _none for s in subscriptions_of_queue(QUALITY)}
    classes = {cls: _none for cls in Event.__subclasses__() if cls.__name__ in by_event}
    table = handlers_of(QUALITY, classes)
    assert set(table) == {s.task_name for s in subscriptions_of_queue(QUALITY)}
    assert task_name(QUALITY, DataLanded) == "churnops.quality.on_data_landed"


def test_handlers_of_refuses_a_missing_or_unrouted_handler() -> None:
    with pytest.raises(LookupError, match="no handler"):
        handlers_of(QUALITY, {DataLanded: _none})
    everything = {
        cls: _none
        for cls in Event.__subclasses__()
        if cls.__name__ in {s.event_type for s in subscriptions_of_queue(QUALITY)}
    }
    with pytest.raises(LookupError, match="not routed"):
        handlers_of(QUALITY, {**everything, RetrainRequested: _none})


def test_every_service_table_covers_its_queue() -> None:
    """Each installed service's handler table is exactly its queue's routes."""
    from churnops_common.plugins import installed_services, load_handlers

    for queue in installed_services():
        table = load_handlers({queue})
        assert set(table) == {s.task_name for s in subscriptions_of_queue(queue)}, queue


def test_task_name_refuses_an_event_not_routed_to_the_queue() -> None:
    with pytest.raises(KeyError):
        task_name(TRAINER, SweepRequested)
