"""Every scored batch is estimated before its labels; an estimated drop asks for a retrain once;
the realized value lands beside the estimate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from churnops_common.db.tables import performance_estimates
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import PerformanceDegraded
from churnops_common.synthetic import generate
from churnops_monitor.estimates import estimator_key
from churnops_monitor.estimation import fit_estimator


def _store_estimator(
    platform: EmbeddedPlatform, scores_of: Callable[..., np.ndarray], version: str = "1"
) -> float:
    """The version's estimator, fitted on a labelled reference the way the trainer's is."""
    reference = generate(4000, seed=99)
    p = scores_of(reference, seed=99)
    labels = (np.random.default_rng(99).random(len(p)) < p).astype(int)
    estimator = fit_estimator(p, labels, "churn-model", version)
    settings = platform.settings
    platform.runtime.store.ensure_buckets([settings.minio_models_bucket])
    platform.runtime.store.put_bytes(
        settings.minio_models_bucket,
        estimator_key("churn-model", version),
        estimator.model_dump_json().encode(),
        "application/json",
    )
    return estimator.reference_pr_auc


def _estimates(platform: EmbeddedPlatform, run_id: str) -> dict[str, Any]:
    query = select(performance_estimates).where(performance_estimates.c.scoring_run_id == run_id)
    with platform.runtime.engine.connect() as conn:
        return {row.metric: row for row in conn.execute(query)}


def test_an_unlabelled_batch_is_estimated_and_its_labels_realize_it(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
    scores_of: Callable[..., np.ndarray],
) -> None:
    platform = make_platform()
    _store_estimator(platform, scores_of)
    batch = scored_batch(platform, tmp_path, name="unlabelled", rows=2000, seed=3)
    platform.publish(batch.batch_scored(has_target=False))
    platform.run()
    rows = _estimates(platform, batch.run_id)
    assert set(rows) == {
        "roc_auc",
        "pr_auc",
        "precision",
        "recall",
        "precision_at_k",
        "expected_churners",
    }
    pr = rows["pr_auc"]
    assert pr.lower < pr.value < pr.upper and pr.realized is None
    # The sum of the recalibrated probabilities: on a calibrated model the reference's map moves
    # them only by its own sampling noise (half-weighted), here under 1%.
    assert rows["expected_churners"].value == pytest.approx(
        batch.predictions["churn_probability"].sum(), rel=0.02
    )
    assert platform.events_of("PerformanceDegraded") == []

    labelled = scored_batch(
        platform, tmp_path, name="labelled", rows=2000, seed=4, with_target=True
    )
    platform.publish(labelled.batch_scored(has_target=True))
    platform.run()
    realized = _estimates(platform, labelled.run_id)
    assert realized["pr_auc"].realized is not None and realized["pr_auc"].realized_rows == 2000
    assert abs(realized["roc_auc"].value - realized["roc_auc"].realized) < 0.05


def test_an_estimated_drop_raises_one_degradation_before_any_label(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
    scores_of: Callable[..., np.ndarray],
) -> None:
    platform = make_platform()
    reference_pr_auc = _store_estimator(platform, scores_of)
    # Covariate shift: the batch holds only the uncertain middle of the population, whom no
    # model can rank well. The estimate falls before any label lands.
    population = generate(30_000, seed=5)
    p = scores_of(population, seed=5)
    middle = population[(p > 0.2) & (p < 0.4)].reset_index(drop=True)
    for name in ("middle-1", "middle-2"):
        batch = scored_batch(platform, tmp_path, name=name, rows=0, seed=5, inputs=middle)
        platform.publish(batch.batch_scored(has_target=False))
        platform.run()
    [degraded] = platform.events_of("PerformanceDegraded")
    assert isinstance(degraded, PerformanceDegraded) and degraded.estimated
    assert degraded.metric == "pr_auc" and degraded.value < reference_pr_auc - 0.05
