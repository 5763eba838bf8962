"""Expected calibration error: how far a model's probabilities are from the churn rates they
predict. One definition for the trainer's gate and `churnops evaluate`."""

from __future__ import annotations

import numpy as np

ECE_BINS = 10


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over equal-mass bins: rows sorted by probability, cut into `bins` groups of (almost)
    equal size; the row-weighted mean |churn rate - mean probability| over the groups."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    gaps = [
        len(group) * abs(y[group].mean() - p[group].mean())
        for group in np.array_split(order, min(bins, len(y)))
    ]
    return float(sum(gaps) / len(y))
