"""Handlers of the monitor service: plain functions, event in, follow-up events out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Never

from churnops_common.events import (
    BatchScored,
    DataRejected,
    DataValidated,
    Event,
    IntegrityFailed,
    ModelPromoted,
    ModelRejected,
    MonitoringRequested,
    PerformanceDegraded,
    PsiBreached,
)
from churnops_common.handling import Handler, expect, handlers_of
from churnops_common.routing import MONITOR
from churnops_common.runtime import Runtime
from churnops_monitor.alerts import (
    Alert,
    degraded_alert,
    integrity_alert,
    model_rejected_alert,
    promoted_alert,
    psi_alert,
    raise_alert,
    rejected_alert,
)
from churnops_monitor.evaluate_batch import evaluate_batch
from churnops_monitor.evaluate_labels import evaluate_labels
from churnops_monitor.monitoring_report import run_monitoring


def on_data_validated(event: Event, runtime: Runtime) -> Sequence[PerformanceDegraded]:
    """Labels landed: join them to the predictions that scored those ids, per model version."""
    validated = expect(event, DataValidated)
    if validated.kind != "labels":
        return []  # new data is the scorer's, a training set the trainer's
    return evaluate_labels(runtime.under_contract(), validated)


def on_batch_scored(event: Event, runtime: Runtime) -> Sequence[PerformanceDegraded]:
    """Every scored batch: label-free estimates (and an estimated degradation, before any
    label). A batch that carried its target: the realized metrics too, plus segment metrics."""
    return evaluate_batch(runtime.under_contract(), expect(event, BatchScored))


def on_monitoring_requested(event: Event, runtime: Runtime) -> Sequence[Never]:
    requested = expect(event, MonitoringRequested)
    runtime = runtime.under_contract()  # the model's data contract names ids and targets
    run_monitoring(
        runtime,
        report_id=requested.event_id,
        correlation_id=requested.correlation_id,
        since=requested.since,
        now=requested.occurred_at,
    )
    return []


def _alerting[E: Event](cls: type[E], make: Callable[[E], Alert]) -> Handler:
    """A handler that raises one alert and never fails on the webhook's account."""

    def handle(event: Event, runtime: Runtime) -> Sequence[Never]:
        typed = expect(event, cls)
        raise_alert(runtime.engine, runtime.settings, make(typed), typed)
        return []

    handle.__name__ = f"on_{cls.__name__.lower()}"
    return handle


on_psi_breached = _alerting(PsiBreached, psi_alert)
on_performance_degraded = _alerting(PerformanceDegraded, degraded_alert)
on_data_rejected = _alerting(DataRejected, rejected_alert)
on_model_promoted = _alerting(ModelPromoted, promoted_alert)
on_model_rejected = _alerting(ModelRejected, model_rejected_alert)
on_integrity_failed = _alerting(IntegrityFailed, integrity_alert)

HANDLERS = handlers_of(
    MONITOR,
    {
        DataValidated: on_data_validated,
        BatchScored: on_batch_scored,
        MonitoringRequested: on_monitoring_requested,
        PsiBreached: on_psi_breached,
        PerformanceDegraded: on_performance_degraded,
        DataRejected: on_data_rejected,
        ModelPromoted: on_model_promoted,
        ModelRejected: on_model_rejected,
        IntegrityFailed: on_integrity_failed,
    },
)
