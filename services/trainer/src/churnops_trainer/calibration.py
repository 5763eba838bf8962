"""Calibration: a monotone map fitted on out-of-fold predictions, sigmoid or isotonic.

Each method is scored by the Brier score of its own cross-validated predictions on the
out-of-fold rows (it never sees the row it is scored on); the lowest is refitted on all of them.
The model's own probabilities are a candidate too (`none`): a model that is already calibrated
keeps them rather than a map fitted to noise. The map changes probabilities, never the order
of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold

from churnops_common.ml.pipeline import Calibrator

METHODS = ("sigmoid", "isotonic")
FOLDS = 5


@dataclass(frozen=True)
class CalibrationReport:
    """What calibration did to the out-of-fold predictions (Brier, lower is better)."""

    method: str
    brier_before: float
    brier_after: float  # the chosen method's cross-validated Brier
    rows: int
    candidates: dict[str, float]  # method -> cross-validated Brier


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    return np.asarray(np.log(q / (1.0 - q)))


def fit_method(method: str, y: np.ndarray, p: np.ndarray) -> Calibrator:
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return Calibrator(
            "isotonic",
            x=tuple(float(v) for v in iso.X_thresholds_),
            y=tuple(float(v) for v in iso.y_thresholds_),
        )
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p).reshape(-1, 1), y)
    return Calibrator(
        "sigmoid", slope=float(platt.coef_[0, 0]), intercept=float(platt.intercept_[0])
    )


def _cross_validated_brier(method: str, y: np.ndarray, p: np.ndarray, seed: int) -> float:
    predicted = np.empty(len(y))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    for fit, held in folds.split(p.reshape(-1, 1), y):
        predicted[held] = fit_method(method, y[fit], p[fit])(p[held])
    return float(brier_score_loss(y, predicted))


def fit_calibrator(
    y: np.ndarray, p: np.ndarray, seed: int = 42
) -> tuple[Calibrator | None, CalibrationReport]:
    """The calibrator with the lowest cross-validated Brier score, fitted on every row (None:
    the model's own probabilities scored best, or there are too few rows of a class to tell)."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=np.float64)
    before = float(brier_score_loss(y, p))
    if len(np.unique(y)) < 2 or int(np.bincount(y).min()) < FOLDS:
        return None, CalibrationReport("none", before, before, len(y), {})
    scores = {"none": before, **{m: _cross_validated_brier(m, y, p, seed) for m in METHODS}}
    method = min(scores, key=lambda m: scores[m])
    report = CalibrationReport(method, before, scores[method], len(y), scores)
    return (None if method == "none" else fit_method(method, y, p)), report
