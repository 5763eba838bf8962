"""Label-free estimates: exact on known outcomes, unbiased on calibrated probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from churnops_monitor.estimation import (
    EstimationError,
    Estimator,
    _average_precision,
    _centred_isotonic,
    _rank,
    _roc_auc,
    estimate_batch,
    fit_estimator,
)


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 3.5, n)
    return p, (rng.random(n) < p).astype(int)


@pytest.mark.parametrize("ties", [False, True])
def test_known_outcomes_give_sklearns_metrics(ties: bool) -> None:
    p, y = _calibrated(5000, seed=1)
    score = np.round(p, 2) if ties else p  # rounding makes runs of equal scores
    ranked = _rank(score, score)
    outcomes = y[np.argsort(-score, kind="stable")].astype(float)
    assert _roc_auc(outcomes, ranked) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert _average_precision(outcomes, ranked) == pytest.approx(
        average_precision_score(y, score), abs=1e-12
    )


def test_estimates_of_calibrated_batches_fall_in_their_bands() -> None:
    reference_p, reference_y = _calibrated(4000, seed=2)
    estimator = fit_estimator(reference_p, reference_y, "m", "1")
    assert estimator.reference_roc_auc == pytest.approx(roc_auc_score(reference_y, reference_p))
    inside, errors = 0, []
    for seed in range(3, 23):
        p, y = _calibrated(2000, seed)
        estimates = estimate_batch(estimator, p, threshold=0.5, top_k=100, seed=seed)
        realized = roc_auc_score(y, p)
        band = estimates["roc_auc"]
        inside += band.lower <= realized <= band.upper
        errors.append(abs(band.value - realized))
        assert estimates["expected_churners"].value == pytest.approx(y.sum(), rel=0.15)
    assert inside >= 16  # a 95% band, 20 batches
    assert float(np.mean(errors)) < 0.02


def test_a_shifted_population_moves_the_estimate() -> None:
    """Covariate shift towards uncertain customers lowers the expected ROC-AUC."""
    p, y = _calibrated(4000, seed=5)
    estimator = fit_estimator(p, y)
    uncertain = np.random.default_rng(6).uniform(0.35, 0.65, 4000)
    before = estimate_batch(estimator, p, 0.5, 100)["roc_auc"].value
    after = estimate_batch(estimator, uncertain, 0.5, 100)["roc_auc"].value
    assert after < before - 0.15


def test_edge_cases_are_clear() -> None:
    estimator = fit_estimator(*_calibrated(500, seed=7))
    with pytest.raises(EstimationError, match="no ranking"):
        estimate_batch(estimator, np.array([0.3]), 0.5, 10)
    estimates = estimate_batch(estimator, np.full(50, 0.1), threshold=0.5, top_k=10)
    assert np.isnan(estimates["precision"].value)  # nobody above the threshold
    assert estimates["recall"].value == 0.0
    with pytest.raises(EstimationError, match="both outcomes"):
        fit_estimator(np.array([0.2, 0.4]), np.array([0, 0]))


def test_estimates_of_calibrated_batches_are_unbiased() -> None:
    """On calibrated probabilities the mean error over many small batches is near zero: what is
    left per batch is the realized metric's own sampling error, not a bias."""
    estimator = fit_estimator(*_calibrated(2000, seed=30))
    roc_errors, pr_errors = [], []
    for seed in range(31, 71):
        p, y = _calibrated(500, seed)
        estimates = estimate_batch(estimator, p, threshold=0.5, top_k=50, seed=seed)
        roc_errors.append(estimates["roc_auc"].value - roc_auc_score(y, p))
        pr_errors.append(estimates["pr_auc"].value - average_precision_score(y, p))
    # 40 batches, each error's spread about 0.02 (ROC) and 0.04 (PR): a mean within 3 SE.
    assert abs(float(np.mean(roc_errors))) < 0.01
    assert abs(float(np.mean(pr_errors))) < 0.02


def test_the_map_goes_half_way_to_the_reference_rates() -> None:
    """A model whose probabilities are twice the churn rate: the map is the mean of its own
    probability and the reference's rate, increasing, defined on all of [0, 1]."""
    rng = np.random.default_rng(8)
    p = rng.uniform(0.0, 0.8, 20_000)
    y = (rng.random(len(p)) < p / 2).astype(int)
    estimator = fit_estimator(p, y)
    assert estimator.calibration_method == "half-centred-isotonic"
    assert estimator.calibration_x[0] == 0.0 and estimator.calibration_x[-1] == 1.0
    assert np.all(np.diff(estimator.calibration_y) >= 0)
    grid = np.array([0.2, 0.4, 0.6])
    assert estimator.calibrate(grid) == pytest.approx(0.75 * grid, abs=0.03)


def test_an_estimator_stored_before_the_method_was_recorded_still_loads() -> None:
    stored = fit_estimator(*_calibrated(500, seed=9)).model_dump()
    del stored["calibration_method"]
    old = Estimator.model_validate_json(json.dumps(stored))
    assert old.calibration_method == "isotonic"
    assert old.calibrate(np.array([0.3]))[0] == pytest.approx(
        np.interp(0.3, stored["calibration_x"], stored["calibration_y"])
    )


def test_the_centred_isotonic_fit_has_a_knot_at_each_steps_centre() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    y = np.array([0, 1, 0, 1, 1, 1])  # steps: {0.1} -> 0, {0.2, 0.3} -> 0.5, {0.4..0.6} -> 1
    x_knots, y_knots = _centred_isotonic(p, y)
    assert x_knots == pytest.approx([0.1, 0.25, 0.5])
    assert y_knots == pytest.approx([0.0, 0.5, 1.0])
