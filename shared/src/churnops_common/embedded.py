"""Embedded mode: every installed stage in this process, over the in-process bus.

Nothing to install but Python: a local folder is the object store, SQLite the monitoring store.
The handlers are the same functions the Celery workers run.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path

from churnops_common.bus.local_bus import LocalBus
from churnops_common.db.migrations import upgrade
from churnops_common.dispatch import Outcome
from churnops_common.events import (
    DataKind,
    DataLanded,
    DataRejected,
    DataValidated,
    Event,
    ObjectRef,
)
from churnops_common.plugins import load_handlers
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_common.storage import validate_key
from churnops_common.tabular import shared_reads

# Where a command puts the files it runs through the platform in stack mode: outside the
# prefixes MinIO notifies the workers of, so the command's own run is the only one.
COMMAND_PREFIX = "cli"


class EmbeddedPlatform:
    """The installed stages in this process over the in-process bus.

    `in_stack=True` runs them against the stack's stores (Postgres, S3, MLflow): how a command
    such as `churnops train` or `score` takes the workers' path from a laptop.
    """

    def __init__(
        self, settings: Settings, services: set[str] | None = None, *, in_stack: bool = False
    ) -> None:
        if settings.is_stack and not in_stack:
            raise ValueError("EmbeddedPlatform runs in embedded mode only")
        self.settings = settings
        self.bus = LocalBus(load_handlers(services))
        self.runtime = Runtime.from_settings(settings, self.bus)
        upgrade(self.runtime.engine)
        self.runtime.store.ensure_buckets(settings.buckets)

    @property
    def stages(self) -> list[str]:
        return sorted({name.split(".")[1] for name in self.bus.handlers})

    def drop(self, path: Path, kind: DataKind, name: str | None = None) -> DataLanded:
        """Put a file into `landing/<kind>/` and announce it, as MinIO's notification would."""
        folder = f"{COMMAND_PREFIX}/{kind}" if self.settings.is_stack else kind
        key = validate_key(f"{folder}/{name or path.name}")
        content_type = mimetypes.guess_type(path.name)[0]
        info = self.runtime.store.put_file(
            self.settings.minio_landing_bucket, key, path, content_type
        )
        ref = ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)
        event = DataLanded.start_chain(
            ref.versioned_uri, object=ref, kind=kind, content_type=content_type, source="embedded"
        )
        self.bus.publish(event)
        return event

    def publish(self, event: Event) -> None:
        self.bus.publish(event)

    def run(self, on_outcome: Callable[[str, Outcome], None] | None = None) -> int:
        """Deliver queued events (and their follow-ups) until nothing is left. Every stage runs
        in this process, so a file one stage read whole is kept for the next (`shared_reads`):
        quality's check and the scoring pass parse a batch once."""
        with shared_reads():
            return self.bus.run_until_idle(self.runtime, on_outcome=on_outcome)

    def events_of(self, event_type: str) -> list[Event]:
        return [e for e in self.bus.published if e.event_type == event_type]

    def outcome_of(self, landed: DataLanded) -> DataValidated | DataRejected | None:
        """Quality's verdict on a landed file, once `run` has delivered it: the event it
        published, or for a file checked before (same content, so the ledger skipped it) its
        recorded run."""
        for event in self.bus.published:
            if (
                isinstance(event, DataValidated | DataRejected)
                and event.correlation_id == landed.correlation_id
            ):
                return event
        return self._recorded_outcome(landed)

    def _recorded_outcome(self, landed: DataLanded) -> DataValidated | DataRejected | None:
        from sqlalchemy import select

        from churnops_common.db.tables import quality_runs

        ref = landed.object
        query = (
            select(quality_runs)
            .where(
                quality_runs.c.bucket == ref.bucket,
                quality_runs.c.object_key == ref.key,
                quality_runs.c.etag == ref.etag,
            )
            .order_by(quality_runs.c.created_at.desc())
            .limit(1)
        )
        with self.runtime.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        common = {"object": ref, "kind": landed.kind, "quality_run_id": row.run_id}
        if row.status == "rejected":
            return landed.derive(
                DataRejected, row.run_id, reason=row.reason or "rejected", **common
            )
        return landed.derive(
            DataValidated,
            row.run_id,
            rows=int(row.rows or 0),
            has_target=bool(row.has_target),
            warnings=tuple(row.warnings or ()),
            **common,
        )
