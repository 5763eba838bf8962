"""Handlers of the monitor service: plain functions, event in, follow-up events out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Never

from churnops_common.errors import PermanentError
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
from churnops_monitor.estimates import (
    estimate_scored,
    estimated_degradation,
    realized_of,
    record_realized,
)
from churnops_monitor.monitoring_report import run_monitoring
from churnops_monitor.performance import (
    LabelledSet,
    champion_version,
    degraded_followups,
    evaluate_set,
    join_labels,
    performance_run_id,
    store_evaluation,
)
from churnops_monitor.sources import (
    ScoringRun,
    binary_target,
    read_inputs,
    read_labels,
    read_predictions,
)

log = logging.getLogger(__name__)


def on_data_validated(event: Event, runtime: Runtime) -> Sequence[PerformanceDegraded]:
    """Labels landed: join them to the predictions that scored those ids, per model version."""
    validated = expect(event, DataValidated)
    if validated.kind != "labels":
        return []
    runtime = runtime.under_contract()  # the model's data contract names ids and targets
    settings = runtime.settings
    ref = validated.object
    labels = read_labels(
        runtime.store,
        ref.bucket,
        ref.key,
        id_column=settings.id_column,
        target=settings.target_column,
        etag=ref.etag,
    )
    sets = join_labels(runtime, labels)
    if not sets:
        log.warning(
            "labels %s: none of %d ids was scored by any recent batch", ref.uri, len(labels)
        )
        return []
    evaluations = []
    for labelled in sets:
        run_id = performance_run_id(ref, labelled.model_name, labelled.model_version)
        evaluation = evaluate_set(labelled, run_id, settings)
        store_evaluation(runtime.engine, evaluation, "labels", ref, validated.correlation_id)
        if len(labelled.scoring_run_ids) == 1:  # the labels of one estimated batch
            record_realized(runtime, labelled.scoring_run_ids[0], realized_of(evaluation.metrics))
        evaluations.append(evaluation)
        log.info(
            "labels %s vs %s v%s: %d rows, PR-AUC %s",
            ref.uri,
            labelled.model_name,
            labelled.model_version,
            evaluation.metrics.rows,
            evaluation.metrics.pr_auc,
        )
    live = champion_version(runtime.engine, settings.mlflow_model_name)
    return degraded_followups(runtime, validated, evaluations, live)


def on_batch_scored(event: Event, runtime: Runtime) -> Sequence[PerformanceDegraded]:
    """Every scored batch: label-free estimates (and an estimated degradation, before any
    label). A batch that carried its target: the realized metrics too, plus segment metrics."""
    scored = expect(event, BatchScored)
    runtime = runtime.under_contract()  # the model's data contract names ids and targets
    estimates = estimate_scored(runtime, scored)
    if not scored.has_target:
        return estimated_degradation(runtime, scored, estimates)
    settings = runtime.settings
    id_col, target = settings.id_column, settings.target_column
    preds = read_predictions(runtime.store, scored.predictions.uri, id_col)
    if target not in preds:
        raise PermanentError(
            f"{scored.predictions.uri} has no {target!r} column although the"
            " batch was scored with its target"
        )
    preds = preds[preds[target].notna()].copy()
    preds[target] = binary_target(preds[target], target)
    run = ScoringRun(
        scored.scoring_run_id,
        scored.input.bucket,
        scored.input.key,
        scored.input.etag,
        scored.predictions.uri,
        scored.model_name,
        scored.model_version,
        scored.rows,
        scored.occurred_at,
    )
    inputs = read_inputs(runtime.store, run, id_col)
    if inputs is not None:
        extra = [c for c in inputs.columns if c not in preds.columns]
        preds = preds.merge(inputs[[id_col, *extra]], on=id_col, how="left")
    labelled = LabelledSet(scored.model_name, scored.model_version, preds, [scored.scoring_run_id])
    run_id = performance_run_id(scored.input, scored.model_name, scored.model_version)
    evaluation = evaluate_set(labelled, run_id, settings)
    store_evaluation(runtime.engine, evaluation, "batch", scored.input, scored.correlation_id)
    if estimates:
        record_realized(runtime, scored.scoring_run_id, realized_of(evaluation.metrics))
    # The batch was scored by the model that was live when it landed.
    return degraded_followups(runtime, scored, [evaluation], scored.model_version)


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
