"""A batch was scored: estimate its performance before any label and, when the batch carried
its own target, judge the model on it (realized metrics, segments) beside the estimate.
"""

from __future__ import annotations

from churnops_common.errors import PermanentError
from churnops_common.events import BatchScored, PerformanceDegraded
from churnops_common.runtime import Runtime
from churnops_monitor.estimates import (
    estimate_scored,
    estimated_degradation,
    realized_of,
    record_realized,
)
from churnops_monitor.performance import (
    LabelledSet,
    degraded_followups,
    evaluate_set,
    performance_run_id,
    store_evaluation,
)
from churnops_monitor.sources import ScoringRun, binary_target, read_inputs, read_predictions


def evaluate_batch(runtime: Runtime, scored: BatchScored) -> list[PerformanceDegraded]:
    """Label-free estimates (and an estimated degradation); with a target, realized metrics."""
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
