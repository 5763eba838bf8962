"""What a handler gets besides its event: settings, object store, monitoring DB, bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine

from churnops_common.bus.base import Bus
from churnops_common.db.engine import make_engine
from churnops_common.db.ledger import Ledger
from churnops_common.settings import Settings
from churnops_common.storage import ObjectStore, object_store_from_settings


@dataclass
class Runtime:
    settings: Settings
    store: ObjectStore
    engine: Engine
    bus: Bus
    # Per-process caches a service may keep (a loaded model, a baseline profile).
    cache: dict[str, object] = field(default_factory=dict)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.engine)

    @classmethod
    def from_settings(cls, settings: Settings, bus: Bus) -> Runtime:
        """Build without touching the network: engines and clients connect on first use."""
        return cls(
            settings=settings,
            store=object_store_from_settings(settings),
            engine=make_engine(settings.monitoring_url()),
            bus=bus,
        )
