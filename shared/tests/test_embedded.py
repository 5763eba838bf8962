from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from churnops_common.bus.local_bus import LocalBus
from churnops_common.db.migrations import upgrade
from churnops_common.events import (
    DataLanded,
    Event,
    MonitoringRequested,
    RetrainRequested,
    SweepRequested,
)
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings


def test_local_bus_delivers_fifo_with_followups_after_queued_events(
    embedded_settings: Settings,
) -> None:
    seen: list[str] = []

    def on_retrain(event: Event, _rt: Runtime) -> Sequence[Event]:
        seen.append(f"retrain:{getattr(event, 'detail', '')}")
        return [event.derive(MonitoringRequested)]

    def on_monitoring(event: Event, _rt: Runtime) -> Sequence[Event]:
        seen.append("monitoring")
        return []

    bus = LocalBus(
        {
            "churnops.trainer.on_retrain_requested": on_retrain,
            "churnops.monitor.on_monitoring_requested": on_monitoring,
        }
    )
    runtime = Runtime.from_settings(embedded_settings, bus)
    upgrade(runtime.engine)
    bus.publish(RetrainRequested(reason="manual", detail="a"))
    bus.publish(RetrainRequested(reason="manual", detail="b"))
    bus.publish(SweepRequested())  # no quality stage in this process: recorded as unrouted
    assert bus.run_until_idle(runtime) == 4
    assert seen == ["retrain:a", "retrain:b", "monitoring", "monitoring"]
    assert bus.unrouted == ["SweepRequested"]


def test_local_bus_stops_an_endless_loop(embedded_settings: Settings) -> None:
    def forever(event: Event, _rt: Runtime) -> Sequence[Event]:
        return [RetrainRequested(reason="manual")]

    bus = LocalBus({"churnops.trainer.on_retrain_requested": forever})
    runtime = Runtime.from_settings(embedded_settings, bus)
    upgrade(runtime.engine)
    bus.publish(RetrainRequested(reason="manual"))
    with pytest.raises(RuntimeError, match="event loop"):
        bus.run_until_idle(runtime, max_messages=20)


def test_embedded_platform_drop_stores_the_file_and_announces_it(
    embedded_settings: Settings,
    tmp_path: Path,
) -> None:
    from churnops_common.embedded import EmbeddedPlatform

    source = tmp_path / "batch 1.csv"
    source.write_text("customer_id,age\nC1,40\n")
    platform = EmbeddedPlatform(embedded_settings, services=set())
    event = platform.drop(source, "new_data")
    assert isinstance(event, DataLanded)
    assert event.object.key == "new_data/batch 1.csv"
    assert platform.runtime.store.get_bytes("landing", "new_data/batch 1.csv") == (
        source.read_bytes()
    )
    assert platform.events_of("DataLanded") == [event]
    assert platform.run() == 0  # no stages installed in this platform
