"""A worker app for the integration test: its handler has an effect that is NOT idempotent
by itself (one new alerts row per call), so only the ledger can keep it to exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from churnops_common.celery_app import create_worker_app
from churnops_common.db.tables import alerts
from churnops_common.events import Event
from churnops_common.runtime import Runtime

TASK = "churnops.monitor.on_monitoring_requested"


def record(event: Event, runtime: Runtime) -> Sequence[Event]:
    with runtime.engine.begin() as conn:
        conn.execute(
            alerts.insert().values(
                alert_key=uuid.uuid4().hex,
                kind="test",
                message=event.event_id,
                status="sent",
                attempts=1,
                correlation_id=event.correlation_id,
                created_at=datetime.now(UTC),
            )
        )
    return []


app = create_worker_app("monitor", {TASK: record})
