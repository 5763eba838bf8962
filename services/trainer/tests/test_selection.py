"""How the trainer chooses: the plain defaults first on the same folds, categorical handling as
a searched choice, out-of-fold target encoding, calibration, and the gate's ECE check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnops_common.ml.pipeline import TabularPreprocessor
from churnops_common.synthetic import generate
from churnops_trainer import gate
from churnops_trainer.calibration import fit_calibrator
from churnops_trainer.encoding import target_encode
from churnops_trainer.metrics import expected_calibration_error
from churnops_trainer.search import SearchConfig, categorical_modes, starting_points, tune

EXCLUDE = ("churned", "customer_id")


def test_plain_defaults_run_first_and_every_trial_uses_the_same_folds() -> None:
    train = generate(1500, seed=8, levels=50)
    config = SearchConfig(n_trials=9, seed=3)
    challenger = tune(train, train["churned"], EXCLUDE, config)
    pre = TabularPreprocessor.fit(train, exclude=EXCLUDE, min_level_rows=config.min_level_rows)
    modes = categorical_modes(pre, config)
    assert modes == ["native", "onehot", "target"]  # area_code has 50 levels
    points = starting_points(config.families, modes)
    trials = challenger.study.trials
    for point, trial in zip(points, trials, strict=False):
        assert trial.params == pytest.approx(point)
        assert trial.state.name == "COMPLETE"  # the bar to beat is never pruned
    assert len(points) >= 5
    # k folds below the size threshold: each complete trial scored on all five.
    assert challenger.folds == 5
    assert all(len(t.user_attrs["fold_pr_auc"]) == 5 for t in trials if t.state.name == "COMPLETE")
    best = max(t.value for t in trials if t.value is not None and t.state.name == "COMPLETE")
    assert np.mean(challenger.fold_scores) == pytest.approx(best)
    assert challenger.fold_spread > 0
    assert challenger.params["categorical"] in modes


def test_above_the_size_threshold_one_split_is_used() -> None:
    train = generate(1200, seed=9)
    challenger = tune(train, train["churned"], EXCLUDE, SearchConfig(n_trials=2, cv_max_rows=1000))
    assert challenger.folds == 1 and challenger.fold_spread == 0.0
    assert len(challenger.validation_index) == pytest.approx(0.2 * 1200, abs=1)


def test_target_encoding_is_out_of_fold() -> None:
    """A high-cardinality column of pure noise: encoded with its own labels it would predict
    them; out of fold it cannot."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"noise": [f"L{v}" for v in rng.integers(0, 400, 4000)]})
    y = pd.Series(rng.integers(0, 2, 4000))
    pre = TabularPreprocessor.fit(frame)
    features = pre.transform(frame)
    encoded, tables = target_encode(features, y, ["noise"], pre, 5, 0)
    assert roc_auc_score(y, encoded["noise"]) < 0.56
    in_sample = pre.with_encoding(tables).transform(frame)["noise"]
    assert roc_auc_score(y, in_sample) > 0.6  # the control: what a leak would look like
    assert len(tables["noise"]) == len(pre.categorical["noise"]) + 1


def test_rare_levels_are_grouped_and_unseen_ones_are_missing() -> None:
    frame = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 30 + ["x", "y", "z"]})
    pre = TabularPreprocessor.fit(frame, min_level_rows=5)
    assert pre.categorical["c"] == ["a", "b", "__rare__"] and pre.grouped["c"] == ["x", "y", "z"]
    out = pre.transform(pd.DataFrame({"c": ["x", "a", "never", None]}))["c"]
    assert out.tolist()[:2] == ["__rare__", "a"] and out.isna().tolist()[2:] == [True, True]


def test_calibration_repairs_skewed_probabilities() -> None:
    rng = np.random.default_rng(1)
    truth = rng.beta(1.5, 5, 20_000)
    y = (rng.random(20_000) < truth).astype(int)
    logit = np.log(truth / (1 - truth))
    skewed = 1 / (1 + np.exp(-(1.8 * logit + 1.2)))  # as a weighted positive class leaves them
    fit, fresh = slice(0, 10_000), slice(10_000, None)
    calibrator, report = fit_calibrator(y[fit], skewed[fit])
    assert calibrator is not None
    before = expected_calibration_error(y[fresh], skewed[fresh])
    after = expected_calibration_error(y[fresh], calibrator(skewed[fresh]))
    assert before > 0.05 and after < 0.02
    assert report.brier_after < report.brier_before and report.method == calibrator.method
    assert report.candidates["none"] == report.brier_before
    assert report.brier_after == min(report.candidates.values())
    order = np.argsort(skewed[fresh])
    assert (np.diff(calibrator(skewed[fresh])[order]) >= 0).all()  # monotone


def test_expected_calibration_error_uses_equal_mass_bins() -> None:
    p = np.repeat(np.linspace(0.05, 0.95, 10), 100)
    y = np.zeros(1000)
    y[::2] = 1  # every bin's churn rate is 0.5
    expected = np.mean(np.abs(0.5 - np.linspace(0.05, 0.95, 10)))
    assert expected_calibration_error(y, p) == pytest.approx(expected)


def test_the_gate_refuses_a_worse_calibrated_challenger() -> None:
    worse = gate.Calibration(challenger_ece=0.08, champion_ece=0.02, tolerance=0.02)
    decision = gate.decide(0.70, "3", 0.60, 0.01, worse)
    assert not decision.promote and "ECE 0.0800" in decision.reason
    fine = gate.Calibration(challenger_ece=0.03, champion_ece=0.02, tolerance=0.02)
    assert gate.decide(0.70, "3", 0.60, 0.01, fine).promote
    assert not gate.decide(0.60, "3", 0.60, 0.01, fine).promote  # PR-AUC comes first


def test_the_empc_rule_refuses_a_less_profitable_challenger_only_when_on() -> None:
    from churnops_common.ml.profit_metrics import ProfitMetrics

    def profit(empc: float | None) -> ProfitMetrics:
        return ProfitMetrics(empc=empc, mp=empc, optimal_threshold=0.2, contact_rate=0.3)

    rule = gate.profit_rule(profit(4.0), profit(5.0))
    decision = gate.decide(0.70, "3", 0.60, 0.01, None, rule)
    assert not decision.promote and "EMPC 4.0000 is below the champion's 5.0000" in decision.reason
    better = gate.decide(0.70, "3", 0.60, 0.01, None, gate.profit_rule(profit(5.0), profit(5.0)))
    assert better.promote and "EMPC 5.0000 vs 5.0000" in better.reason
    assert gate.decide(0.70, "3", 0.60, 0.01).promote  # off: today's behaviour
    assert gate.profit_rule(profit(None), profit(5.0)) is None  # undefined: no rule
