"""Alerts: one message per notable event, sent to the webhook and recorded once per alert key.

Every alert gets a row in `monitoring.alerts`, also when no webhook URL is set (status
`skipped`): the table is the audit trail of what happened, whether or not anyone was paged.
The row is claimed (`pending`) before anything is sent, so two replicas page nobody twice;
a `failed` key is retried by a later event with the same key (bounded), so a webhook outage
does not lose the page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from churnops_common.db.engine import is_sqlite
from churnops_common.db.tables import alerts
from churnops_common.drift import DriftVerdict
from churnops_common.events import (
    DataRejected,
    Event,
    IntegrityFailed,
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
    """The quality report's own headline ('accepted, drift in 8 of 14 features: retrain
    requested'), then the worst features."""
    verdict = DriftVerdict(event.features, event.threshold)  # the drifted features only
    compared = f" of {event.features_compared}" if event.features_compared is not None else ""
    words = f"drift in {len(verdict.drifted)}{compared} features"
    worst = list(verdict.drifted.items())[:5]
    features = ", ".join(f"{name}={psi:.3f}" for name, psi in worst)
    return Alert(
        f"PsiBreached:{event.quality_run_id}",
        "PsiBreached",
        f":warning: {event.object.uri}: accepted, {words}: retrain requested "
        f"(PSI >= {event.threshold:g}: {features})",
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


def integrity_alert(event: IntegrityFailed) -> Alert:
    return Alert(
        f"IntegrityFailed:{event.event_id}",
        "IntegrityFailed",
        f":rotating_light: Integrity check failed in {event.task_name}: {event.reason}"
        " (the message is parked in dead_letters; nothing was loaded)",
    )


def notifier_from(settings: Settings) -> WebhookNotifier:
    return WebhookNotifier(
        settings.alert_webhook_url,
        timeout_s=settings.alert_timeout_s,
        max_attempts=settings.alert_max_attempts,
        budget_s=settings.alert_budget_s,
    )


# A key whose delivery failed is tried again by later events with that key, until this many
# delivery rounds (each up to ALERT_MAX_ATTEMPTS posts) have been spent on it.
MAX_DELIVERY_ROUNDS = 3


def existing_status(engine: Engine, key: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(alerts.c.status).where(alerts.c.alert_key == key)
        ).scalar_one_or_none()


def raise_alert(engine: Engine, settings: Settings, alert: Alert, event: Event) -> Delivery:
    """Claim the key, send, record the outcome: one page per key across every replica.

    The claim is the row itself (status `pending`), inserted before anything is sent: of two
    workers handling the same key only the one whose insert went in sends. A key recorded as
    `failed` (the webhook was down) is claimed again by a later event with that key and
    retried, a bounded number of times; `sent` and `skipped` keys are never sent again.
    """
    claimed, previous = _claim(engine, settings, alert, event)
    if not claimed:
        log.info("alert %s already recorded (%s); not sent again", alert.key, previous)
        return Delivery("skipped", 0, f"already recorded as {previous}")
    delivery = notifier_from(settings).send(alert.text)
    _finish(engine, alert, delivery)
    log.info("alert %s: %s after %d attempt(s)", alert.key, delivery.status, delivery.attempts)
    return delivery


def _claim(
    engine: Engine, settings: Settings, alert: Alert, event: Event
) -> tuple[bool, str | None]:
    """(whether this worker may send, the status the key had when it may not)."""
    values: dict[str, Any] = {
        "alert_key": alert.key,
        "kind": alert.kind,
        "message": alert.text,
        "payload": event.model_dump(mode="json"),
        "status": "pending",
        "attempts": 0,
        "error": None,
        "correlation_id": event.correlation_id,
        "created_at": datetime.now(UTC),
    }
    insert = sqlite_insert if is_sqlite(engine) else pg_insert
    # psycopg 3 reports rowcount -1 for ON CONFLICT DO NOTHING: RETURNING says who inserted.
    claim = (
        insert(alerts)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["alert_key"])
        .returning(alerts.c.id)
    )
    with engine.begin() as conn:
        if conn.execute(claim).first() is not None:
            return True, None
        row = conn.execute(
            select(alerts.c.status, alerts.c.attempts, alerts.c.payload).where(
                alerts.c.alert_key == alert.key
            )
        ).one()
        if not _retryable(row.status, row.attempts, row.payload, settings, event):
            return False, str(row.status)
        # Compare-and-set on what was read: of two workers retrying, one wins the row.
        taken = conn.execute(
            update(alerts)
            .where(
                alerts.c.alert_key == alert.key,
                alerts.c.status == row.status,
                alerts.c.attempts == row.attempts,
            )
            .values(status="pending", message=alert.text, correlation_id=event.correlation_id)
            .returning(alerts.c.id)
        ).first()
    return taken is not None, None if taken is not None else str(row.status)


def _retryable(status: str, attempts: int, payload: Any, settings: Settings, event: Event) -> bool:
    """A failed key with rounds left; or a key this very event claimed and never finished
    (its worker died mid-send and the event was delivered again)."""
    if status == "failed":
        return attempts < settings.alert_max_attempts * MAX_DELIVERY_ROUNDS
    if status == "pending":
        return isinstance(payload, dict) and payload.get("event_id") == event.event_id
    return False


def _finish(engine: Engine, alert: Alert, delivery: Delivery) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(alerts)
            .where(alerts.c.alert_key == alert.key)
            .values(
                status=delivery.status,
                attempts=alerts.c.attempts + delivery.attempts,
                error=delivery.error,
            )
        )
