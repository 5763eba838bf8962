"""Per-row reasons: the input columns that pushed each customer's churn score up the most.

Two attributions from the model itself, both additive (a row's contributions plus the bias give
the model's raw margin):

- `shap`: `ChurnPipeline.contributions`, the model's exact TreeSHAP values (the contract). Exact,
  but TreeSHAP costs about depth^2 per tree, hundreds of times a predict on deep trees.
- `path`: decision-path attribution (Saabas): each split on a row's path credits its feature with
  the change in the node's expected value. It needs only the leaf each row lands in, so it costs
  about one predict, and it agrees with SHAP on the leading reasons for most rows.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from churnops_common.ml.pipeline import ChurnPipeline
from churnops_scorer.path_attribution import PathAttribution

ReasonMethod = Literal["shap", "path"]
TOP_REASONS = 3


class Attributor:
    """Contributions per input column for a batch, by the configured method."""

    def __init__(self, pipeline: ChurnPipeline, method: ReasonMethod) -> None:
        self.pipeline = pipeline
        self.method = method
        self._path = PathAttribution.of(pipeline) if method == "path" else None

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(contributions n x columns in `pipeline.input_columns` order, churn probability)."""
        if self._path is not None:
            features = self.pipeline.preprocessor.transform(frame)
            return self._path.contributions(features)
        values = self.pipeline.contributions(frame).to_numpy(dtype="float64")
        return values, np.asarray(self.pipeline.churn_probability(frame), dtype="float64")


def top_reasons(
    contributions: np.ndarray, columns: list[str], k: int = TOP_REASONS
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The k columns with the largest contribution per row, largest first, and their values.

    Fewer than k input columns leave the missing reasons empty (None, NaN).
    """
    n, width = contributions.shape
    take = min(k, width)
    names = np.asarray(columns, dtype=object)
    if take == 0:
        order = np.empty((n, 0), dtype=np.intp)
    else:
        # argpartition finds the top k in linear time; then sort only those k.
        part = np.argpartition(-contributions, take - 1, axis=1)[:, :take]
        part_values = np.take_along_axis(contributions, part, axis=1)
        order = np.take_along_axis(part, np.argsort(-part_values, axis=1, kind="stable"), axis=1)
    reason_names: list[np.ndarray] = []
    reason_values: list[np.ndarray] = []
    for i in range(k):
        if i < take:
            reason_names.append(names[order[:, i]])
            reason_values.append(np.take_along_axis(contributions, order[:, i : i + 1], 1)[:, 0])
        else:
            reason_names.append(np.full(n, None, dtype=object))
            reason_values.append(np.full(n, np.nan))
    return reason_names, reason_values
