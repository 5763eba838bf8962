"""The retention list: the customers with the largest expected loss in a batch, top K.

Expected loss is the churn probability times a value column (e.g. monthly charges) when the batch
has it, else the probability. The list is kept as a running top K over chunks, so it costs
K rows of memory whatever the batch size, and ties keep file order (chunking does not change it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops_scorer.scoring import PROBABILITY, REASONS, RISK_BAND

EXPECTED_LOSS = "expected_loss"
VALUE = "value"


class RetentionList:
    def __init__(self, id_column: str, value_column: str | None, top_k: int) -> None:
        self.id_column = id_column
        self.value_column = value_column
        self.top_k = top_k
        self.columns = [id_column, PROBABILITY, RISK_BAND, VALUE, EXPECTED_LOSS, *REASONS]
        self.best = pd.DataFrame({c: pd.Series(dtype="object") for c in self.columns})

    def add(self, inputs: pd.DataFrame, predictions: pd.DataFrame) -> None:
        """Merge one chunk: `inputs` (for the value column) and its `predictions`, same order."""
        probability = predictions[PROBABILITY].to_numpy(dtype="float64")
        if self.value_column and self.value_column in inputs:
            value = pd.to_numeric(inputs[self.value_column], errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan
            )
            loss = probability * np.nan_to_num(value, nan=0.0)
        else:
            value = np.full(len(probability), np.nan)
            loss = probability
        chunk = predictions[[self.id_column, PROBABILITY, RISK_BAND, *REASONS]].copy()
        chunk[VALUE] = value
        chunk[EXPECTED_LOSS] = loss
        top = chunk.nlargest(self.top_k, EXPECTED_LOSS, keep="first")
        merged = (
            top if self.best.empty else pd.concat([self.best, top[self.columns]], ignore_index=True)
        )
        self.best = merged[self.columns].nlargest(self.top_k, EXPECTED_LOSS, keep="first")

    def merge(self, other: RetentionList) -> None:
        """Merge another (later) part's list: ties keep this part's rows first."""
        if other.best.empty:
            return
        merged = (
            pd.concat([self.best, other.best], ignore_index=True)
            if not self.best.empty
            else other.best
        )
        self.best = merged.nlargest(self.top_k, EXPECTED_LOSS, keep="first")

    def merge_frame(self, ranked: pd.DataFrame) -> None:
        """Merge a part's saved list (a later part: ties keep this list's rows first)."""
        other = RetentionList(self.id_column, self.value_column, self.top_k)
        other.best = ranked[self.columns]
        self.merge(other)

    def table(self) -> pd.DataFrame:
        table = self.best.reset_index(drop=True)
        table.insert(0, "rank", np.arange(1, len(table) + 1))
        return table

    def to_csv_bytes(self) -> bytes:
        return self.table().to_csv(index=False).encode("utf-8")
