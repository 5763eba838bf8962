"""Classification metrics of churn probabilities against observed outcomes.

Pure functions over arrays: the same numbers for a labels file, a scored batch that carried its
target, or a test. A metric that is undefined on the data (AUC with one class, precision with no
predicted positives) is None rather than a made-up 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

CALIBRATION_BINS = 10


class CalibrationBin(BaseModel):
    """Predicted vs observed churn rate in one probability bin [lower, upper)."""

    model_config = ConfigDict(frozen=True)

    lower: float
    upper: float
    rows: int
    mean_predicted: float
    observed_rate: float


class PerformanceMetrics(BaseModel):
    """Everything the monitor reports about one model version on one labelled population."""

    model_config = ConfigDict(frozen=True)

    rows: int
    positives: int
    threshold: float
    roc_auc: float | None
    pr_auc: float | None
    precision_at_threshold: float | None
    recall_at_threshold: float | None
    top_k: int
    precision_at_k: float | None
    brier: float | None
    calibration: tuple[CalibrationBin, ...]

    def as_row(self) -> dict[str, Any]:
        data = self.model_dump()
        data["calibration"] = [b.model_dump() for b in self.calibration]
        return data


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def _both_classes(y_true: np.ndarray) -> bool:
    return bool(y_true.size) and 0 < int(y_true.sum()) < y_true.size


def precision_recall_at(
    y_true: np.ndarray, predicted: np.ndarray
) -> tuple[float | None, float | None]:
    """Precision and recall of a decision (True: predicted to churn, i.e. contacted)."""
    true_positives = float(np.sum(predicted & (y_true == 1)))
    return _ratio(true_positives, float(predicted.sum())), _ratio(
        true_positives, float(y_true.sum())
    )


def top_k_size(rows: int, share: float) -> int:
    """K for precision at top K: a share of the rows, at least one when there are rows."""
    return min(rows, max(1, math.ceil(rows * share))) if rows else 0


def precision_at_k(y_true: np.ndarray, y_score: np.ndarray, k: int) -> float | None:
    """Share of churners among the K highest scores (ties broken by position, stable)."""
    if k <= 0:
        return None
    order = np.argsort(-y_score, kind="stable")[:k]
    return float(y_true[order].mean())


def calibration_table(
    y_true: np.ndarray, y_score: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[CalibrationBin, ...]:
    """Equal-width probability bins; empty bins are left out. The last bin includes 1.0."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(y_score, edges[1:-1], right=False), 0, bins - 1)
    table = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        if count:
            table.append(
                CalibrationBin(
                    lower=float(edges[b]),
                    upper=float(edges[b + 1]),
                    rows=count,
                    mean_predicted=float(y_score[mask].mean()),
                    observed_rate=float(y_true[mask].mean()),
                )
            )
    return tuple(table)


def evaluate(
    y_true: np.ndarray | list[int],
    y_score: np.ndarray | list[float],
    *,
    threshold: float,
    top_k_share: float,
    contact: np.ndarray | None = None,
) -> PerformanceMetrics:
    """Every monitored metric of `y_score` (probabilities) against `y_true` (0/1). Precision
    and recall are of `contact` (the profit cut) when given, else of `score >= threshold`."""
    truth = np.asarray(y_true, dtype=np.int64)
    score = np.asarray(y_score, dtype=np.float64)
    if truth.shape != score.shape:
        raise ValueError(f"{truth.size} outcomes but {score.size} scores")
    if truth.size and not np.isin(truth, (0, 1)).all():
        raise ValueError("outcomes must be 0 or 1")
    both = _both_classes(truth)
    predicted = score >= threshold if contact is None else np.asarray(contact, dtype=bool)
    precision, recall = precision_recall_at(truth, predicted)
    k = top_k_size(truth.size, top_k_share)
    return PerformanceMetrics(
        rows=int(truth.size),
        positives=int(truth.sum()),
        threshold=threshold,
        roc_auc=float(roc_auc_score(truth, score)) if both else None,
        pr_auc=float(average_precision_score(truth, score)) if both else None,
        precision_at_threshold=precision,
        recall_at_threshold=recall,
        top_k=k,
        precision_at_k=precision_at_k(truth, score, k),
        brier=float(brier_score_loss(truth, score)) if truth.size else None,
        calibration=calibration_table(truth, score) if truth.size else (),
    )
