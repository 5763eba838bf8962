"""Labels landed: join them to the predictions that scored those ids, per model version, and
judge each version on them (metrics, segments); the live version may be degraded.

A labels file holds ids and outcomes only. Each id is matched to the latest prediction that
scored it among the recent scoring runs, per model version; each version's set is evaluated
and stored as its own performance run (an id fixed by the file and the version). The labels
of one estimated batch are also the realized figures beside its label-free estimate.
"""

from __future__ import annotations

import logging

from churnops_common.events import DataValidated, PerformanceDegraded
from churnops_common.runtime import Runtime
from churnops_monitor.estimates import realized_of, record_realized
from churnops_monitor.performance import (
    champion_version,
    degraded_followups,
    evaluate_set,
    join_labels,
    performance_run_id,
    store_evaluation,
)
from churnops_monitor.sources import read_labels

log = logging.getLogger(__name__)


def evaluate_labels(runtime: Runtime, validated: DataValidated) -> list[PerformanceDegraded]:
    """Metrics per model version the labels reach; PerformanceDegraded for the live one."""
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
