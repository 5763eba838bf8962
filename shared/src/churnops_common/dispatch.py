"""The one code path from a wire payload to a handled event, shared by Celery and embedded mode.

decode -> claim in the ledger -> run the plain handler -> publish its follow-ups -> mark done.
An invalid payload, or an error that retrying cannot fix, is parked in the dead-letter table; a
transient error is raised again so the caller can retry it (until its last attempt).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from churnops_common.errors import integrity_failure, is_transient
from churnops_common.events import Event, IntegrityFailed, parse_event
from churnops_common.handling import Handler
from churnops_common.routing import subscription_by_task

if TYPE_CHECKING:
    from churnops_common.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    status: Literal["done", "skipped", "dead_lettered"]
    event: Event | None = None
    followups: list[Event] = field(default_factory=list)
    detail: str = ""


def decode(task_name: str, payload: Any) -> Event:
    """Parse and check that the event is the type this task subscribes to."""
    event = parse_event(payload)
    expected = subscription_by_task(task_name).event_type
    if event.event_type != expected:
        raise ValueError(f"task {task_name} takes {expected}, got {event.event_type}")
    return event


def handle_message(
    task_name: str,
    payload: Any,
    handler: Handler,
    runtime: Runtime,
    *,
    final_attempt: bool,
    attempt: int = 1,
) -> Outcome:
    try:
        event = decode(task_name, payload)
    except (ValidationError, ValueError) as exc:
        reason = f"invalid event payload: {_summary(exc)}"
        log.error("%s: %s; parked in dead_letters", task_name, reason)
        runtime.ledger.dead_letter(task_name, payload, reason, attempts=attempt)
        return Outcome("dead_lettered", detail=reason)

    try:
        with runtime.ledger.claim(task_name, event) as claim:
            if claim.poisoned:
                log.error("%s: parked %s: %s", task_name, event.event_id, claim.why_not)
                runtime.ledger.dead_letter(
                    task_name, payload, claim.why_not, event=event, attempts=attempt
                )
                return Outcome("dead_lettered", event, detail=claim.why_not)
            if not claim.acquired:
                log.info("%s: skipped %s (%s)", task_name, event.idempotency_key, claim.why_not)
                return Outcome("skipped", event, detail=claim.why_not)
            followups = list(handler(event, runtime))
            for followup in followups:
                runtime.bus.publish(followup)
            claim.followups = len(followups)
    except Exception as exc:
        if is_transient(exc) and not final_attempt:
            log.warning(
                "%s: transient error on attempt %d, will retry: %s", task_name, attempt, exc
            )
            raise
        reason = f"{type(exc).__name__}: {exc}"
        log.exception("%s: giving up on %s after %d attempt(s)", task_name, event.event_id, attempt)
        runtime.ledger.dead_letter(task_name, payload, reason[:4000], event=event, attempts=attempt)
        _alert_integrity(task_name, event, exc, runtime)
        return Outcome("dead_lettered", event, detail=reason)
    log.info(
        "%s: handled %s -> %s",
        task_name,
        event.event_id,
        [f.event_type for f in followups] or "no follow-ups",
    )
    return Outcome("done", event, followups)


def _alert_integrity(task_name: str, event: Event, exc: Exception, runtime: Runtime) -> None:
    """A failed integrity check is not just parked: the monitor pages someone about it."""
    failure = integrity_failure(exc)
    if failure is None:
        return
    log.critical("%s: integrity check failed for %s: %s", task_name, event.event_id, failure)
    alert = event.derive(
        IntegrityFailed, task_name, task_name=task_name, reason=str(failure)[:4000]
    )
    runtime.bus.publish(alert)


def _summary(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors()[:5]
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors)
    return str(exc)
