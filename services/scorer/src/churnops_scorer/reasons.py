"""Per-row reasons: the input columns that pushed each customer's churn score up the most.

Two attributions from the model itself, both additive (a row's contributions plus the bias give
the model's raw margin):

- `shap`: `ChurnPipeline.contributions`, the model's exact TreeSHAP values (the contract). Exact,
  but TreeSHAP costs about depth^2 per tree, hundreds of times a predict on deep trees.
- `path`: decision-path attribution (Saabas): each split on a row's path credits its feature with
  the change in the node's expected value. It needs only the leaf each row lands in, and it
  agrees with SHAP on the leading reasons for most rows. On LightGBM it comes with the
  probability from one pass over compiled trees (`forest`), faster than a bare predict.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from churnops_common.ml.pipeline import ChurnPipeline
from churnops_scorer import forest
from churnops_scorer.features import FeatureMatrix, as_pandas_bools, numbers
from churnops_scorer.jit import LOCK, compiled
from churnops_scorer.path_attribution import PathAttribution

ReasonMethod = Literal["shap", "path"]
TOP_REASONS = 3
prange = range  # numba.prange once `_top_k` is compiled (see churnops_scorer.jit)


class Attributor:
    """Contributions per input column for a batch, by the configured method.

    `path` on a model whose trees compiled (LightGBM or XGBoost, see `path_attribution`) reads
    Arrow chunks straight into them; every other case goes through pandas and the pipeline's
    own preprocessing.
    """

    def __init__(self, pipeline: ChurnPipeline, method: ReasonMethod) -> None:
        self.pipeline = pipeline
        self.method = method
        trees = pipeline.family != "linear"  # a linear model's contributions are exact and cheap
        self._path = PathAttribution.of(pipeline) if method == "path" and trees else None
        compiled = self._path is not None and self._path.compiled is not None
        self._matrix = FeatureMatrix(pipeline.preprocessor) if compiled else None

    def contributions(self, chunk: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(contributions n x columns in `pipeline.input_columns` order, churn probability)."""
        if self._path is not None and self._matrix is not None:
            return self._path.matrix_contributions(self._matrix(chunk))
        frame = self._frame(chunk)
        if self._path is not None:
            return self._path.contributions(self.pipeline.preprocessor.transform(frame))
        values = self.pipeline.contributions(frame).to_numpy(dtype="float64")
        return values, np.asarray(self.pipeline.churn_probability(frame), dtype="float64")

    def _frame(self, chunk: pa.Table) -> pd.DataFrame:
        """The chunk for the pipeline, read as on the compiled route: numbers parsed by Arrow
        (it rounds text to the nearest double; pandas' own parser can be a last digit off,
        which moves a value sitting exactly on a split threshold to the other side), and
        true/false spellings as the trainer saw them."""
        frame: pd.DataFrame = chunk.to_pandas()
        pre = self.pipeline.preprocessor
        for name in pre.numeric:
            if name in frame:
                frame[name] = numbers(chunk.column(name))
        for name, categories in pre.categorical.items():
            if name in frame:
                frame[name] = as_pandas_bools(chunk.column(name), categories).to_pandas()
        return frame


def top_reasons(
    contributions: np.ndarray, k: int = TOP_REASONS, floor: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(column index, value) of the k largest contributions per row, largest first; ties keep
    column order. Only contributions above `floor` (log-odds) are reasons: a weaker or
    risk-lowering one, or a missing one when there are fewer than k columns, is index -1 and
    value NaN."""
    n, width = contributions.shape
    take = min(k, width)
    index, values = top_k(contributions, take)
    if take < k:
        index = np.hstack([index, np.full((n, k - take), -1, dtype=np.int64)])
        values = np.hstack([values, np.full((n, k - take), np.nan)])
    weak = ~(values > floor)  # NaN too
    if weak.any():
        index = np.where(weak, -1, index)
        values = np.where(weak, np.nan, values)
    return index, values


def top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of each row's k largest values, largest first; k <= values' width."""
    n = len(values)
    index = np.zeros((n, k), dtype=np.int64)
    top = np.zeros((n, k))
    if k:
        kernel = compiled(_top_k)
        with LOCK:
            kernel(np.ascontiguousarray(values, dtype=np.float64), k, index, top)
    return index, top


def _top_k(  # pragma: no cover - runs compiled; covered through its wrapper
    values: np.ndarray, k: int, index: np.ndarray, top: np.ndarray
) -> None:
    """Per row, the k largest values and their columns, largest first; ties keep column order."""
    n, width = values.shape
    for i in prange(n):
        filled = 0
        for c in range(width):
            v = values[i, c]
            if filled == k and not v > top[i, k - 1]:
                continue
            j = filled if filled < k else k - 1
            while j > 0 and v > top[i, j - 1]:  # strictly greater: an equal value stays behind
                top[i, j] = top[i, j - 1]
                index[i, j] = index[i, j - 1]
                j -= 1
            top[i, j] = v
            index[i, j] = c
            if filled < k:
                filled += 1


def warm_up() -> None:
    """Compile (or load from numba's cache) every loop of the reasons' path: the forest's and
    the top-k (the scorer image does this at build time)."""
    forest.warm_up()
    top_k(np.array([[0.0, 1.0]]), 1)


MISSING_VALUE = "missing"
MAX_VALUE_CHARS = 40


class ReasonWording:
    """A reason in an analyst's words: the column, the customer's own value (as the file holds
    it, so whatever encoding the model used inside), its unit, and how much it raises the odds:
    `Contract = Month-to-month (raises churn odds x2.1)`, `tenure = 2 months (...)`."""

    def __init__(self, units: dict[str, str] | None = None) -> None:
        self.units = dict(units or {})

    def value(self, column: str, raw: object) -> str:
        """The customer's value of `column` as text, with its unit."""
        if raw is None or (isinstance(raw, float) and np.isnan(raw)):
            return MISSING_VALUE
        if isinstance(raw, bool | np.bool_):
            text = str(bool(raw))
        elif isinstance(raw, int | float | np.integer | np.floating):
            text = _number(float(raw))
        else:
            text = " ".join(str(raw).split())  # no line breaks or runs of blanks in a cell
            if not text or text.lower() == "nan":  # blank, or a missing number as text
                return MISSING_VALUE
        if len(text) > MAX_VALUE_CHARS:
            text = text[: MAX_VALUE_CHARS - 3] + "..."
        unit = self.units.get(column)
        if not unit or not _is_number(text):
            return text
        if float(text) == 1 and unit.endswith("s"):  # 1 month, not 1 months
            unit = unit[:-1]
        return f"{text} {unit}"

    def reason(self, column: str, raw: object, log_odds: float) -> str:
        return (
            f"{column} = {self.value(column, raw)}"
            f" (raises churn odds x{float(np.exp(log_odds)):.2f})"
        )


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
