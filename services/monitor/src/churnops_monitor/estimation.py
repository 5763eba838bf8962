"""Label-free performance estimates: what the model's metrics will be once labels arrive.

Confidence-based performance estimation (CBPE): a calibrated probability p is the chance that
this customer churns, so over a batch the expected confusion counts at any threshold are sums of
p (true positives) and 1 - p (false positives). From them:

- expected ROC-AUC: the area under (expected FPR, expected TPR) over every distinct score;
- expected PR-AUC (average precision): expected precision weighted by the rise in expected recall;
- expected precision and recall at the decision threshold, precision@K and expected churners.

The estimator is fitted per model version on its reference set (the holdout's calibrated
probabilities with their labels). It learns a map from the model's probabilities to churn
rates, what calibration the model still lacks (CBPE does the same), and counting uses the mapped
probabilities. The map is the mean of two independent estimates of the same calibration curve:
the model's own probability (the trainer calibrated it on other rows) and the reference's
isotonic fit, centred (knots at the middle of each step, straight lines between). Either alone
is noisy where the estimates are decided: a step function fitted to a few thousand rows jumps
where the sample happened to cross and overstates the spread of the rates, which lifts
expected ROC-AUC; the model's own calibration carries its own fitting error. Their mean halves
the variance of either and keeps half of any correction the reference finds (on the shared
datasets it lowers the error of ROC-AUC and PR-AUC estimates over all-or-nothing choices;
services/monitor/README.md). Counting always follows the model's own ranking (the raw scores),
which is what the realized metrics will rank by; only the weights come from the map.

The band of each estimate is the sampling error of the realized metric: outcomes are drawn as
Bernoulli(p) a number of times and the metric computed on each draw, in one pass over the sorted
scores (ranks are fixed, so each draw costs a few vector operations). The same draws give the
point estimate of the metrics that are ratios (ROC-AUC, average precision, precision, recall):
the metric of the expected counts is not the expected metric, and on a batch of a few hundred
rows the gap is a bias of the size of the error itself (average precision most). Sums
(expected churners, precision@K) are exact from the probabilities. Small batches get more draws,
so the simulation's own noise stays well under the sampling error it estimates. What it assumes: the
probabilities stay calibrated for the new population (covariate shift); under concept shift the
same inputs churn at other rates and the estimate is wrong, which the realized value shows when
the labels land.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

DRAWS = 30  # the fewest draws: a large batch's metrics barely vary between draws
MAX_DRAWS = 400
DRAW_CELLS = 2_000_000  # rows x draws per estimate: time stays flat across batch sizes
LINEAR = frozenset({"expected_churners", "precision_at_k"})  # exact from the probabilities
BAND_Z = 1.96  # a 95% band
MIN_ROWS = 2
# The recalibration map is the mean of the model's own probability and the reference's centred
# isotonic fit: two independent estimates of the same calibration curve (why: module docstring).
REFERENCE_WEIGHT = 0.5
CALIBRATION_METHOD = "half-centred-isotonic"


class EstimationError(ValueError):
    """Nothing to estimate from (no rows, no probabilities)."""


class Estimator(BaseModel):
    """The fitted estimator of one model version; stored as JSON beside the model."""

    model_config = ConfigDict(frozen=True)

    model_name: str = ""
    model_version: str = ""
    # The map fitted on the reference: x (probability) -> y (churn rate), increasing, linear
    # between knots. Estimators stored before the method was recorded hold a plain isotonic map.
    calibration_x: list[float]
    calibration_y: list[float]
    calibration_method: str = "isotonic"
    reference_rows: int
    reference_roc_auc: float
    reference_pr_auc: float
    reference_churn_rate: float

    def calibrate(self, probability: np.ndarray) -> np.ndarray:
        p = np.asarray(probability, dtype=np.float64)
        if len(self.calibration_x) < 2:
            return np.clip(p, 0.0, 1.0)
        return np.interp(p, self.calibration_x, self.calibration_y)


@dataclass(frozen=True)
class Estimate:
    """One metric's expected value and its 95% band."""

    value: float
    lower: float
    upper: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "lower": self.lower, "upper": self.upper}


def fit_estimator(
    probability: np.ndarray, labels: np.ndarray, model_name: str = "", model_version: str = ""
) -> Estimator:
    """Fit on a reference set: the recalibration map, and the reference's own metrics."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(p) < MIN_ROWS or len(np.unique(y)) < 2:
        raise EstimationError("the reference set needs rows of both outcomes")
    x_map, y_map = _recalibration_map(p, y)
    return Estimator(
        model_name=model_name,
        model_version=model_version,
        calibration_x=[float(v) for v in x_map],
        calibration_y=[float(v) for v in y_map],
        calibration_method=CALIBRATION_METHOD,
        reference_rows=len(p),
        reference_roc_auc=float(roc_auc_score(y, p)),
        reference_pr_auc=float(average_precision_score(y, p)),
        reference_churn_rate=float(y.mean()),
    )


def _recalibration_map(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the map probability -> churn rate: half the model's own probability, half the
    reference's centred isotonic fit (both linear between the knots, so their mean is too)."""
    x_iso, y_iso = _centred_isotonic(p, y)
    knots = np.unique(np.concatenate([[0.0, 1.0], x_iso]))
    own = np.clip(knots, 0.0, 1.0)
    return knots, (1 - REFERENCE_WEIGHT) * own + REFERENCE_WEIGHT * np.interp(knots, x_iso, y_iso)


def _centred_isotonic(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The isotonic fit as knots at the centre of each of its steps (mean probability of the
    step's rows), joined by straight lines: the step function's jumps are where the sample
    happened to cross, the centres are where its rates were measured."""
    from sklearn.isotonic import IsotonicRegression

    order = np.argsort(p, kind="stable")
    x = p[order]
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit(x, y[order]).predict(x)
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
    sizes = np.diff(np.r_[starts, len(x)])
    return np.add.reduceat(x, starts) / sizes, fitted[starts]


@dataclass(frozen=True)
class _Ranked:
    """Scores sorted descending, grouped into runs of equal score (ties)."""

    p: np.ndarray  # calibrated probabilities, sorted descending
    group_end: np.ndarray  # index one past each run of equal scores


def _rank(score: np.ndarray, calibrated: np.ndarray) -> _Ranked:
    order = np.argsort(-score, kind="stable")
    sorted_score = score[order]
    ends = np.flatnonzero(np.diff(sorted_score) != 0) + 1
    return _Ranked(calibrated[order], np.append(ends, len(score)))


def _roc_auc(positives: np.ndarray, ranked: _Ranked) -> float:
    """ROC-AUC of outcomes (weights in [0, 1]) in the ranked order; ties count half."""
    tp = np.cumsum(positives)[ranked.group_end - 1]
    fp = ranked.group_end - tp  # every row is a positive weight plus a negative one
    tpr = np.concatenate([[0.0], tp / tp[-1]])
    fpr = np.concatenate([[0.0], fp / fp[-1]])
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2)


def _average_precision(positives: np.ndarray, ranked: _Ranked) -> float:
    """Average precision: precision at each distinct score times the recall it adds."""
    tp = np.cumsum(positives)[ranked.group_end - 1]
    gained = np.diff(np.concatenate([[0.0], tp]))
    return float(np.sum(tp / ranked.group_end * gained) / tp[-1])


def estimate_batch(
    estimator: Estimator,
    probability: np.ndarray,
    threshold: float,
    top_k: int,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Expected metrics of one scored batch, each with its 95% band."""
    score = np.asarray(probability, dtype=np.float64)
    if len(score) < MIN_ROWS:
        raise EstimationError(f"a batch of {len(score)} row(s) has no ranking to estimate")
    p = estimator.calibrate(score)
    ranked = _rank(score, p)
    # Sorted descending, the rows at or above the threshold are the first `chosen`.
    chosen = int(np.count_nonzero(score >= threshold))
    k = max(1, min(top_k, len(p)))
    with np.errstate(invalid="ignore", divide="ignore"):
        plug_in = _metrics(ranked.p, ranked, chosen, k)
        rng = np.random.default_rng(seed)
        draws = int(np.clip(DRAW_CELLS // len(p), DRAWS, MAX_DRAWS))
        # One draw of outcomes at a time: memory stays a few vectors of the batch's length.
        spreads = [_metrics(_draw(rng, ranked.p), ranked, chosen, k) for _ in range(draws)]
    out = {}
    for name, center in plug_in.items():
        spread = np.array([drawn[name] for drawn in spreads])
        out[name] = _band(center if name in LINEAR else _mean(spread, center), spread)
    return out


def _mean(spread: np.ndarray, fallback: float) -> float:
    finite = spread[np.isfinite(spread)]
    return float(finite.mean()) if finite.size else fallback


def _draw(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    return (rng.random(len(p)) < p).astype(np.float64)


def _metrics(positives: np.ndarray, ranked: _Ranked, chosen: int, k: int) -> dict[str, float]:
    """The metrics for one vector of outcomes (expected: the probabilities; a draw: 0/1)."""
    churners = float(positives.sum())
    caught = float(positives[:chosen].sum())
    return {
        "roc_auc": float(_roc_auc(positives, ranked)),
        "pr_auc": float(_average_precision(positives, ranked)),
        "precision": caught / chosen if chosen else float("nan"),
        "recall": caught / churners if churners else float("nan"),
        "precision_at_k": float(positives[:k].mean()),
        "expected_churners": churners,
    }


def _band(center: float, spread: np.ndarray) -> Estimate:
    finite = spread[np.isfinite(spread)]
    if not np.isfinite(center) or finite.size < 2:
        return Estimate(center, float("nan"), float("nan"))
    half = BAND_Z * float(np.std(finite, ddof=1))
    return Estimate(center, center - half, center + half)
