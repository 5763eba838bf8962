"""Label-free performance estimates: what the model's metrics will be once labels arrive.

Confidence-based performance estimation (CBPE): a calibrated probability p is the chance that
this customer churns, so over a batch the expected confusion counts at any threshold are sums of
p (true positives) and 1 - p (false positives). From them:

- expected ROC-AUC: the area under (expected FPR, expected TPR) over every distinct score;
- expected PR-AUC (average precision): expected precision weighted by the rise in expected recall;
- expected precision and recall at the decision threshold, precision@K and expected churners.

The estimator is fitted per model version on its reference set (the holdout's calibrated
probabilities with their labels). Fitting may learn an isotonic map from the reference's
probabilities to its outcomes, so what calibration the model still lacks is corrected before
counting (CBPE does the same). The map is kept only when it lowers the expected calibration
error of reference rows it was not fitted on: on a model that is already calibrated (the
trainer's are), a step function fitted to a few thousand rows would add noise, not remove bias.
Counting always follows the model's own ranking (the raw scores), which is what the realized
metrics will rank by; only the weights come from the map.

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


class EstimationError(ValueError):
    """Nothing to estimate from (no rows, no probabilities)."""


class Estimator(BaseModel):
    """The fitted estimator of one model version; stored as JSON beside the model."""

    model_config = ConfigDict(frozen=True)

    model_name: str = ""
    model_version: str = ""
    # The isotonic map fitted on the reference: x (probability) -> y (churn rate), increasing.
    calibration_x: list[float]
    calibration_y: list[float]
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
    """Fit on a reference set: isotonic recalibration, and the reference's own metrics."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import average_precision_score, roc_auc_score

    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(p) < MIN_ROWS or len(np.unique(y)) < 2:
        raise EstimationError("the reference set needs rows of both outcomes")
    x_map: list[float] = []
    y_map: list[float] = []
    if _recalibration_helps(p, y):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        x_map, y_map = [float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_]
    return Estimator(
        model_name=model_name,
        model_version=model_version,
        calibration_x=x_map,
        calibration_y=y_map,
        reference_rows=len(p),
        reference_roc_auc=float(roc_auc_score(y, p)),
        reference_pr_auc=float(average_precision_score(y, p)),
        reference_churn_rate=float(y.mean()),
    )


def _recalibration_helps(p: np.ndarray, y: np.ndarray, splits: int = 10) -> bool:
    """True when isotonic recalibration lowers the expected calibration error (10 equal-mass
    bins) of reference rows it was not fitted on, pooled over repeated 90/10 splits."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.model_selection import StratifiedShuffleSplit

    if min(np.bincount(y)) < splits:
        return False
    held_y, raw, mapped = [], [], []
    shuffles = StratifiedShuffleSplit(n_splits=splits, test_size=0.1, random_state=42)
    for fit, held in shuffles.split(p, y):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p[fit], y[fit])
        held_y.append(y[held])
        raw.append(p[held])
        mapped.append(iso.predict(p[held]))
    outcomes = np.concatenate(held_y)
    return _ece(outcomes, np.concatenate(mapped)) < _ece(outcomes, np.concatenate(raw))


def _ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-mass bins of the probabilities."""
    order = np.argsort(p, kind="stable")
    gaps = [
        abs(float(p[part].mean()) - float(y[part].mean())) * len(part)
        for part in np.array_split(order, bins)
        if len(part)
    ]
    return float(sum(gaps) / len(p))


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
