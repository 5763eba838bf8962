from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from churnops_monitor.metrics import evaluate, precision_at_k, top_k_size


@pytest.fixture
def fixed() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = rng.binomial(1, 0.25, 500)
    score = np.clip(0.25 + 0.35 * (y - 0.25) + rng.normal(0, 0.2, 500), 0, 1)
    return y, score


def test_metrics_equal_sklearns(fixed: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = fixed
    m = evaluate(y, score, threshold=0.4, top_k_share=0.1)
    assert m.rows == 500
    assert m.positives == int(y.sum())
    assert m.roc_auc == pytest.approx(roc_auc_score(y, score))
    assert m.pr_auc == pytest.approx(average_precision_score(y, score))
    predicted = (score >= 0.4).astype(int)
    assert m.precision_at_threshold == pytest.approx(precision_score(y, predicted))
    assert m.recall_at_threshold == pytest.approx(recall_score(y, predicted))
    assert m.brier == pytest.approx(brier_score_loss(y, score))
    # Top 10%: the 50 highest scores.
    assert m.top_k == 50
    assert m.precision_at_k == pytest.approx(y[np.argsort(-score)[:50]].mean())


def test_calibration_table_equals_sklearns_uniform_bins(
    fixed: tuple[np.ndarray, np.ndarray],
) -> None:
    y, score = fixed
    table = evaluate(y, score, threshold=0.5, top_k_share=0.1).calibration
    observed, predicted = calibration_curve(y, score, n_bins=10, strategy="uniform")
    assert [b.observed_rate for b in table] == pytest.approx(list(observed))
    assert [b.mean_predicted for b in table] == pytest.approx(list(predicted))
    assert sum(b.rows for b in table) == 500
    assert all(b.lower <= b.mean_predicted <= b.upper for b in table)


def test_precision_at_k_by_hand() -> None:
    y = np.array([1, 0, 1, 0, 0, 1])
    score = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.05])
    assert precision_at_k(y, score, 3) == pytest.approx(2 / 3)
    assert precision_at_k(y, score, 1) == 1.0
    assert top_k_size(6, 0.1) == 1
    assert top_k_size(0, 0.1) == 0


def test_single_class_leaves_auc_undefined() -> None:
    m = evaluate([0, 0, 0], [0.1, 0.7, 0.2], threshold=0.5, top_k_share=0.5)
    assert m.roc_auc is None
    assert m.pr_auc is None
    assert m.recall_at_threshold is None  # no churner to recall
    assert m.precision_at_threshold == 0.0
    assert m.brier == pytest.approx(np.mean(np.square([0.1, 0.7, 0.2])))


def test_bad_outcomes_are_refused() -> None:
    with pytest.raises(ValueError, match="0 or 1"):
        evaluate([0, 2], [0.1, 0.2], threshold=0.5, top_k_share=0.1)
    with pytest.raises(ValueError, match="2 outcomes but 1 scores"):
        evaluate([0, 1], [0.1], threshold=0.5, top_k_share=0.1)
