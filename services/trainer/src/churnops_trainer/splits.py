"""Stratified splits: the holdout (for the gate) and the early-stopping validation rows."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

MIN_ROWS_PER_CLASS = 2


def can_stratify(y: pd.Series, share: float) -> bool:
    """Both classes present often enough that each side of the split gets some of each."""
    counts = y.value_counts()
    if len(counts) < 2 or int(counts.min()) < MIN_ROWS_PER_CLASS:
        return False
    return int(counts.min() * share) >= 1 and int(counts.min() * (1 - share)) >= 1


def stratified_split(
    frame: pd.DataFrame, y: pd.Series, share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, taken): `share` of the rows, stratified on y, by index (no row in both)."""
    stratify = y if can_stratify(y, share) else None
    rest, taken = train_test_split(
        frame.index, test_size=share, random_state=seed, stratify=stratify
    )
    return frame.loc[rest], frame.loc[taken]
