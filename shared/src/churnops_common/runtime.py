"""What a handler gets besides its event: settings, object store, monitoring DB, bus."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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

    def under_contract(self) -> Runtime:
        """This runtime with the model's data contract applied to its settings.

        Every handler runs under it (dispatch calls this), so every stage reads the target and
        id columns the model was trained with; the settings' names only seed the first one.
        """
        from churnops_common.contract import apply_contract, load_contract, pointer_key

        key = pointer_key(self.settings.mlflow_model_name)
        info = self.store.stat(self.settings.minio_models_bucket, key)
        if info is None:
            return self
        cache_key = f"contract:{key}@{info.etag}"
        contract = self.cache.get(cache_key)
        if contract is None:
            contract = load_contract(self.store, self.settings)
            self.cache[cache_key] = contract
        settings = apply_contract(self.settings, contract)  # type: ignore[arg-type]
        return self if settings is self.settings else replace(self, settings=settings)

    @classmethod
    def from_settings(cls, settings: Settings, bus: Bus) -> Runtime:
        """Build without touching the network: engines and clients connect on first use."""
        return cls(
            settings=settings,
            store=object_store_from_settings(settings),
            engine=make_engine(settings.monitoring_url()),
            bus=bus,
        )
