"""The platform's one decision, as the monitor applies it: the profit cut of the retention list.

Precision and recall, the classification report, the segment metrics and the label-free
estimates all count a customer as "predicted to churn" when the cut contacts them: positive
expected profit under the campaign's economics (RETENTION_*), within capacity and budget. The
customer's value comes from the value column where the predictions were joined to their inputs,
else the campaign's constant CLV, exactly as the scorer priced them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops_common.ml.economics import Economics, RealizedProfit, decide, realized
from churnops_common.ml.pipeline import as_number
from churnops_common.settings import Settings

SCORE = "churn_probability"
NOBODY = 1.0  # the reported threshold of a cut that contacts nobody


def values_of(frame: pd.DataFrame, economics: Economics) -> np.ndarray:
    """CLV per row: the value column (blanks take the constant) or the constant for all."""
    column = economics.value_column
    raw = None
    if column and column in frame.columns:
        raw = as_number(frame[column]).to_numpy(dtype=np.float64, na_value=np.nan)
    return economics.values(raw, len(frame))


def contact_of(frame: pd.DataFrame, settings: Settings) -> np.ndarray:
    """The cut over the rows of `frame` (predictions, with inputs where joined)."""
    economics = Economics.from_settings(settings)
    return decide(frame[SCORE].to_numpy(dtype=np.float64), values_of(frame, economics), economics)


def threshold_of(probability: np.ndarray, contact: np.ndarray) -> float:
    """The lowest probability the cut contacts (with one CLV for all, the cut is exactly
    `probability >= it`); NOBODY when it contacts nobody."""
    chosen = np.asarray(probability, dtype=np.float64)[np.asarray(contact, dtype=bool)]
    return float(chosen.min()) if chosen.size else NOBODY


def realized_profit(frame: pd.DataFrame, target: str, settings: Settings) -> RealizedProfit:
    """The labelled rows' realized profit: the cut against the two plain policies."""
    economics = Economics.from_settings(settings)
    return realized(
        frame[SCORE].to_numpy(dtype=np.float64),
        frame[target].to_numpy(dtype=np.int64),
        values_of(frame, economics),
        economics,
    )
