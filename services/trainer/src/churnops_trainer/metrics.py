"""Holdout metrics and the decision threshold."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
)

from churnops_common.ml.calibration_error import expected_calibration_error


class Metrics(BaseModel):
    """Scores of one model on one labelled sample (PR-AUC = average precision)."""

    model_config = ConfigDict(frozen=True)

    roc_auc: float
    pr_auc: float
    log_loss: float
    brier: float
    ece: float  # expected calibration error, ECE_BINS equal-mass bins
    f1: float
    threshold: float
    rows: int
    positive_rate: float


def evaluate(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> Metrics:
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    return Metrics(
        roc_auc=float(roc_auc_score(y, p)),
        pr_auc=float(average_precision_score(y, p)),
        log_loss=float(log_loss(y, p, labels=[0, 1])),
        brier=float(brier_score_loss(y, p)),
        ece=expected_calibration_error(y, p),
        f1=float(f1_score(y, (p >= threshold).astype(int), zero_division=0)),
        threshold=float(threshold),
        rows=len(y),
        positive_rate=float(y.mean()),
    )


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(average_precision_score(np.asarray(y, dtype=int), np.asarray(p, dtype=float)))


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability cut that maximises F1 (chosen on validation rows, never the holdout)."""
    precision, recall, thresholds = precision_recall_curve(np.asarray(y, dtype=int), p)
    if thresholds.size == 0:
        return 0.5
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])
