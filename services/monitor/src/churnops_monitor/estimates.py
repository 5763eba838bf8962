"""Performance known before the labels: estimate each scored batch, act on an estimated drop,
and put the realized value beside the estimate when the labels land.

The estimator of a model version is fitted once on the version's reference set (its holdout
predictions with labels, stored by the trainer at registration) and kept beside the model in
the models bucket (`estimators/<model>/v<version>.json`): every monitor replica and every later
batch reads the same one.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, select, update

from churnops_common.db.inserts import insert_for
from churnops_common.db.tables import performance_estimates
from churnops_common.events import BatchScored, PerformanceDegraded
from churnops_common.ml.economics import Economics, decide
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_monitor.decision import threshold_of
from churnops_monitor.estimation import Estimate, EstimationError, Estimator, estimate_batch
from churnops_monitor.estimation import fit_estimator as fit
from churnops_monitor.metrics import PerformanceMetrics

log = logging.getLogger(__name__)

SCORE = "churn_probability"
ESTIMATOR_PREFIX = "estimators"


def estimator_key(model_name: str, version: str) -> str:
    return f"{ESTIMATOR_PREFIX}/{model_name}/v{version}.json"


def estimator_for(runtime: Runtime, model_name: str, version: str) -> Estimator | None:
    """The version's estimator: stored, else fitted from its reference set and stored; None for
    a version registered without a reference set."""
    from churnops_common.ml.reference import LABEL, PROBABILITY, NoReferenceSet, load_reference_set

    cache_key = f"estimator:{model_name}:{version}"
    cached = runtime.cache.get(cache_key)
    if isinstance(cached, Estimator):
        return cached
    bucket, key = runtime.settings.minio_models_bucket, estimator_key(model_name, version)
    if runtime.store.exists(bucket, key):
        estimator = Estimator.model_validate_json(runtime.store.get_bytes(bucket, key))
    else:
        try:
            reference = load_reference_set(runtime.settings, version, model_name)
        except NoReferenceSet as missing:
            log.info("no label-free estimates for %s v%s: %s", model_name, version, missing)
            return None
        except Exception as exc:
            if not _unknown_version(exc):
                raise  # an MLflow outage: the task retries
            log.info("no label-free estimates: %s v%s is not registered", model_name, version)
            return None
        estimator = fit(
            reference[PROBABILITY].to_numpy(),
            reference[LABEL].to_numpy(),
            model_name=model_name,
            model_version=version,
        )
        runtime.store.put_bytes(
            bucket, key, estimator.model_dump_json().encode(), "application/json"
        )
    runtime.cache[cache_key] = estimator
    return estimator


def _unknown_version(exc: Exception) -> bool:
    """MLflow's answer for a model or version its registry does not hold."""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_DOES_NOT_EXIST"


def estimate_scored(runtime: Runtime, scored: BatchScored) -> dict[str, Estimate]:
    """Estimate one scored batch and record it (idempotent per scoring run)."""
    estimator = estimator_for(runtime, scored.model_name, scored.model_version)
    if estimator is None:
        return {}
    with runtime.store.local_path(scored.predictions.bucket, scored.predictions.key) as path:
        probability = pd.read_parquet(path, columns=[SCORE])[SCORE].to_numpy(dtype=np.float64)
    settings = runtime.settings
    top_k = max(1, int(len(probability) * settings.monitor_top_k_share))
    try:
        estimates = estimate_batch(
            estimator, probability, cut_threshold(probability, settings), top_k
        )
    except EstimationError as exc:
        log.info("%s: no estimate: %s", scored.predictions.uri, exc)
        return {}
    _record(runtime, scored, estimator, estimates, len(probability))
    return estimates


def cut_threshold(probability: np.ndarray, settings: Settings) -> float:
    """The profit cut as a probability, priced at the constant CLV (the predictions alone carry
    no value column; with one CLV for all the cut is exactly `probability >= it`). Nobody
    contacted: infinity, so nobody counts as predicted to churn."""
    economics = replace(Economics.from_settings(settings), value_column=None)
    contact = decide(probability, economics.values(None, len(probability)), economics)
    return threshold_of(probability, contact) if contact.any() else float("inf")


def _record(
    runtime: Runtime,
    scored: BatchScored,
    estimator: Estimator,
    estimates: dict[str, Estimate],
    rows: int,
) -> None:
    references = {"roc_auc": estimator.reference_roc_auc, "pr_auc": estimator.reference_pr_auc}
    now = datetime.now(UTC)
    values = [
        {
            "scoring_run_id": scored.scoring_run_id,
            "metric": metric,
            "model_name": scored.model_name,
            "model_version": scored.model_version,
            "rows": rows,
            "value": _finite(estimate.value),
            "lower": _finite(estimate.lower),
            "upper": _finite(estimate.upper),
            "reference_value": references.get(metric),
            "correlation_id": scored.correlation_id,
            "estimated_at": now,
        }
        for metric, estimate in estimates.items()
    ]
    statement = insert_for(runtime.engine, performance_estimates).values(values)
    with runtime.engine.begin() as conn:
        conn.execute(statement.on_conflict_do_nothing())


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def estimated_degradation(
    runtime: Runtime, scored: BatchScored, estimates: dict[str, Estimate]
) -> list[PerformanceDegraded]:
    """PerformanceDegraded (estimated) when the whole PR-AUC band sits below the reference by
    more than the setting; once per model version (one retrain request is enough)."""
    estimate = estimates.get("pr_auc")
    estimator = estimator_for(runtime, scored.model_name, scored.model_version)
    if estimate is None or estimator is None or not np.isfinite(estimate.upper):
        return []
    floor = estimator.reference_pr_auc - runtime.settings.monitor_estimated_pr_auc_drop
    if estimate.upper >= floor:
        return []
    if _already_emitted(runtime, scored):
        log.info("%s v%s already estimated degraded", scored.model_name, scored.model_version)
        return []
    with runtime.engine.begin() as conn:
        conn.execute(
            update(performance_estimates)
            .where(
                performance_estimates.c.scoring_run_id == scored.scoring_run_id,
                performance_estimates.c.metric == "pr_auc",
            )
            .values(degraded_emitted=True)
        )
    log.warning(
        "%s v%s: estimated PR-AUC %.3f (band up to %.3f) is below %.3f (reference %.3f)",
        scored.model_name,
        scored.model_version,
        estimate.value,
        estimate.upper,
        floor,
        estimator.reference_pr_auc,
    )
    return [
        scored.derive(
            PerformanceDegraded,
            f"estimated:{scored.model_name}:{scored.model_version}",
            model_name=scored.model_name,
            model_version=scored.model_version,
            metric="pr_auc",
            value=estimate.value,
            threshold=floor,
            estimated=True,
        )
    ]


def _already_emitted(runtime: Runtime, scored: BatchScored) -> bool:
    """Another batch's chain already reported this version (this chain may report again)."""
    query = select(performance_estimates.c.scoring_run_id).where(
        performance_estimates.c.model_name == scored.model_name,
        performance_estimates.c.model_version == scored.model_version,
        performance_estimates.c.degraded_emitted.is_(True),
        performance_estimates.c.correlation_id != scored.correlation_id,
    )
    with runtime.engine.connect() as conn:
        return conn.execute(query.limit(1)).first() is not None


def realized_of(metrics: PerformanceMetrics) -> dict[str, float | None]:
    """The labelled metrics under the estimates' names."""
    return {
        "roc_auc": metrics.roc_auc,
        "pr_auc": metrics.pr_auc,
        "precision": metrics.precision_at_threshold,
        "recall": metrics.recall_at_threshold,
        "precision_at_k": metrics.precision_at_k,
        "expected_churners": float(metrics.positives),
        "rows": float(metrics.rows),
    }


def record_realized(
    runtime: Runtime, scoring_run_id: str, realized: dict[str, float | None]
) -> None:
    """The realized metrics of an estimated batch, beside its estimates."""
    rows = int(realized.pop("rows", 0) or 0)
    now = datetime.now(UTC)
    with runtime.engine.begin() as conn:
        for metric, value in realized.items():
            if value is None or not np.isfinite(value):
                continue
            conn.execute(
                update(performance_estimates)
                .where(
                    and_(
                        performance_estimates.c.scoring_run_id == scoring_run_id,
                        performance_estimates.c.metric == metric,
                    )
                )
                .values(realized=float(value), realized_rows=rows, realized_at=now)
            )


def latest_estimates(runtime: Runtime, limit: int = 10) -> list[dict[str, Any]]:
    """The newest estimated batches, one row each (for `status` and the report)."""
    table = performance_estimates
    query = (
        select(table)
        .where(table.c.metric.in_(("roc_auc", "pr_auc", "expected_churners")))
        .order_by(table.c.estimated_at.desc())
        .limit(limit * 3)
    )
    with runtime.engine.connect() as conn:
        rows = conn.execute(query).all()
    batches: dict[str, dict[str, Any]] = {}
    for row in rows:
        batch = batches.setdefault(
            row.scoring_run_id,
            {
                "scoring_run_id": row.scoring_run_id,
                "model_version": row.model_version,
                "rows": row.rows,
                "estimated_at": row.estimated_at,
            },
        )
        batch[row.metric] = {
            "value": row.value,
            "lower": row.lower,
            "upper": row.upper,
            "realized": row.realized,
        }
    return list(batches.values())[:limit]
