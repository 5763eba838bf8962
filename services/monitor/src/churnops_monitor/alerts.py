"""Alerts: one message per notable event, sent to the webhook and recorded once per alert key.

Every alert gets a row in `monitoring.alerts`, also when no webhook URL is set (status
`skipped`): the table is the audit trail of what happened, whether or not anyone was paged.
A key that already has a row is never sent again, so a redelivered event pages nobody twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from churnops_common.db.engine import is_sqlite
from churnops_common.db.tables import alerts
from churnops_common.events import (
    DataRejected,
    Event,
    ModelPromoted,
    ModelRejected,
    PerformanceDegraded,
    PsiBreached,
)
from churnops_common.settings import Settings
from churnops_monitor.notifier import Delivery, WebhookNotifier

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Alert:
    key: str
    kind: str
    text: str


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def psi_alert(event: PsiBreached) -> Alert:
    worst = sorted(event.features.items(), key=lambda kv: -kv[1])[:5]
    features = ", ".join(f"{name}={psi:.3f}" for name, psi in worst)
    return Alert(
        f"PsiBreached:{event.quality_run_id}",
        "PsiBreached",
        f":warning: Drift in {event.object.uri}: max PSI {event.max_psi:.3f} >= "
        f"{event.threshold:g} ({features})",
    )


def degraded_alert(event: PerformanceDegraded) -> Alert:
    """One page per model version and metric: a version that stays degraded is one fact."""
    return Alert(
        f"PerformanceDegraded:{event.model_name}:{event.model_version}:{event.metric}",
        "PerformanceDegraded",
        f":chart_with_downwards_trend: {event.model_name} v{event.model_version}: live "
        f"{event.metric} {event.value:.3f} < {event.threshold:g}",
    )


def rejected_alert(event: DataRejected) -> Alert:
    where = f" (quarantined at {event.quarantine.uri})" if event.quarantine else ""
    return Alert(
        f"DataRejected:{event.object.versioned_uri}",
        "DataRejected",
        f":no_entry: Rejected {event.object.uri}: {event.reason}{where}",
    )


def promoted_alert(event: ModelPromoted) -> Alert:
    previous = (
        f" (was v{event.previous_version}, PR-AUC {_fmt(event.champion_pr_auc)})"
        if event.previous_version
        else ""
    )
    return Alert(
        f"ModelPromoted:{event.model_name}:{event.model_version}",
        "ModelPromoted",
        f":trophy: {event.model_name} v{event.model_version} is the champion, PR-AUC "
        f"{event.challenger_pr_auc:.3f}{previous}",
    )


def model_rejected_alert(event: ModelRejected) -> Alert:
    return Alert(
        f"ModelRejected:{event.model_name}:{event.model_version}",
        "ModelRejected",
        f":information_source: Challenger {event.model_name} v{event.model_version} not "
        f"promoted (PR-AUC {event.challenger_pr_auc:.3f} vs champion "
        f"{_fmt(event.champion_pr_auc)}): {event.reason}",
    )


def notifier_from(settings: Settings) -> WebhookNotifier:
    return WebhookNotifier(
        settings.alert_webhook_url,
        timeout_s=settings.alert_timeout_s,
        max_attempts=settings.alert_max_attempts,
        budget_s=settings.alert_budget_s,
    )


def existing_status(engine: Engine, key: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(alerts.c.status).where(alerts.c.alert_key == key)
        ).scalar_one_or_none()


def raise_alert(engine: Engine, settings: Settings, alert: Alert, event: Event) -> Delivery:
    """Send (unless this key was already recorded) and record the outcome."""
    previous = existing_status(engine, alert.key)
    if previous is not None:
        log.info("alert %s already recorded (%s); not sent again", alert.key, previous)
        return Delivery("skipped", 0, f"already recorded as {previous}")
    delivery = notifier_from(settings).send(alert.text)
    _record(engine, alert, event, delivery)
    log.info("alert %s: %s after %d attempt(s)", alert.key, delivery.status, delivery.attempts)
    return delivery


def _record(engine: Engine, alert: Alert, event: Event, delivery: Delivery) -> None:
    values: dict[str, Any] = {
        "alert_key": alert.key,
        "kind": alert.kind,
        "message": alert.text,
        "payload": event.model_dump(mode="json"),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "error": delivery.error,
        "correlation_id": event.correlation_id,
        "created_at": datetime.now(UTC),
    }
    insert = sqlite_insert if is_sqlite(engine) else pg_insert
    with engine.begin() as conn:
        conn.execute(
            insert(alerts).values(**values).on_conflict_do_nothing(index_elements=["alert_key"])
        )
