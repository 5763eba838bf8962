"""The retention list: the customers with the largest expected loss in a batch, top K.

Expected loss is the churn probability times a value column (e.g. monthly charges) when the batch
has it, else the probability. The list is kept as a running top K over chunks, so it costs
K rows of memory whatever the batch size, and ties keep file order (chunking does not change it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from churnops_scorer.features import numbers
from churnops_scorer.scoring import PROBABILITY, REASONS, RISK_BAND, probabilities

EXPECTED_LOSS = "expected_loss"
VALUE = "value"


class RetentionList:
    def __init__(self, id_column: str, value_column: str | None, top_k: int) -> None:
        self.id_column = id_column
        self.value_column = value_column
        self.top_k = top_k
        self.columns = [id_column, PROBABILITY, RISK_BAND, VALUE, EXPECTED_LOSS, *REASONS]
        self.best = pd.DataFrame({c: pd.Series(dtype="object") for c in self.columns})

    def add(self, chunk: pa.Table, predictions: pa.Table) -> None:
        """Merge one input chunk (for the value column) and its predictions, same order."""
        probability = probabilities(predictions)
        if self.value_column and self.value_column in chunk.column_names:
            value = numbers(chunk.column(self.value_column))
            loss = probability * np.nan_to_num(value, nan=0.0)
        else:
            value = np.full(len(probability), np.nan)
            loss = probability
        best = _top_rows(loss, self.top_k)
        top = predictions.select([self.id_column, PROBABILITY, RISK_BAND, *REASONS]).take(best)
        frame = top.to_pandas()
        frame[VALUE] = value[best]
        frame[EXPECTED_LOSS] = loss[best]
        self.merge_frame(frame)

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
        """The list for spreadsheets: text that a spreadsheet would run as a formula is
        prefixed with a quote (ids and reasons come from user data)."""
        table = self.table()
        for column in table.columns:
            if not pd.api.types.is_numeric_dtype(table[column]):
                table[column] = table[column].map(spreadsheet_safe)
        table.columns = [spreadsheet_safe(str(c)) for c in table.columns]
        return table.to_csv(index=False).encode("utf-8")


# What Excel, LibreOffice and Sheets read as the start of a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A text cell that starts like a formula, prefixed with `'` so it stays text."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _top_rows(loss: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values, largest first, ties in position order."""
    if len(loss) > k > 0:
        kth = np.partition(loss, len(loss) - k)[len(loss) - k]
        candidates = np.flatnonzero(loss >= kth)  # every tie at the cut, in position order
    else:
        candidates = np.arange(len(loss))
    order = np.argsort(-loss[candidates], kind="stable")
    return candidates[order][:k]
