"""Binary targets from whatever a file holds: 0/1, true/false, yes/no (any case, as text too)."""

from __future__ import annotations

import numpy as np
import pandas as pd

_POSITIVE = {"1", "1.0", "true", "yes", "y", "t"}
_NEGATIVE = {"0", "0.0", "false", "no", "n", "f"}


class TargetError(ValueError):
    """The target column is missing, empty or not binary; the message says what was found."""


def binary_target(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column as 0/1 integers. Rows with a missing target raise: a label must be known."""
    if column not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:12]))
        raise TargetError(f"target column {column!r} not found; columns are: {shown}")
    series = frame[column]
    if series.isna().any():
        raise TargetError(
            f"target column {column!r} has {int(series.isna().sum())} missing value(s);"
            " drop those rows or fill them"
        )
    text = series.astype("string").str.strip().str.lower()
    known = text.isin(_POSITIVE | _NEGATIVE)
    if not known.all():
        odd = sorted(set(text[~known].astype(str)))[:5]
        raise TargetError(
            f"target column {column!r} is not binary: found {odd}; use 0/1, true/false or yes/no"
        )
    values = text.isin(_POSITIVE).astype(np.int64)
    if values.nunique() < 2:
        raise TargetError(f"target column {column!r} has only one class ({int(values.iloc[0])})")
    return pd.Series(values.to_numpy(), index=frame.index, name=column)
