"""The retention list: the customers with the largest expected loss in a batch, top K.

Expected loss is the churn probability times a value column (e.g. monthly charges) when the batch
has it, else the probability (and `value_warning` says so, naming the setting). The list is kept
as a running top K over chunks, so it costs K rows of memory whatever the batch size, and ties
keep file order (chunking does not change it).

Each listed customer's reasons are written in words with the customer's own values, read from
the input chunk (`ReasonWording`): only the rows that enter the list are worded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnops_common.contract import columns_hint
from churnops_scorer.features import numbers
from churnops_scorer.reasons import ReasonWording
from churnops_scorer.scoring import PROBABILITY, REASON_VALUES, REASONS, RISK_BAND, probabilities

if TYPE_CHECKING:
    from churnops_common.settings import Settings

EXPECTED_LOSS = "expected_loss"
VALUE = "value"
RAW_VALUES = [f"{r}_customer_value" for r in REASONS]  # kept beside the list, not shown


def _customer_values(chunk: pa.Table, names: pa.ChunkedArray, rows: np.ndarray) -> np.ndarray:
    """Per listed row: the input value of the column its reason names, as text (numbers
    rounded to 2 places), None where there is no reason or the batch lacks the column. One
    Arrow take per column named, not a Python object per cell of the chunk."""
    out = np.full(len(rows), None, dtype=object)
    named = np.asarray(names.to_pylist(), dtype=object)
    for column in {n for n in named if isinstance(n, str)} & set(chunk.column_names):
        where = np.flatnonzero(named == column)
        values = chunk.column(column).take(pa.array(rows[where]))
        if pa.types.is_floating(values.type):
            values = pc.round(values, 2)
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        out[where] = values.cast(pa.string()).to_pylist()
    return out


class RetentionList:
    def __init__(
        self,
        id_column: str,
        value_column: str | None,
        top_k: int,
        wording: ReasonWording | None = None,
    ) -> None:
        self.id_column = id_column
        self.value_column = value_column
        self.top_k = top_k
        self.wording = wording or ReasonWording()
        # Reasons are kept as (column, log-odds, the customer's value as text) and worded
        # once, for the rows of the final list (`table`).
        self.listed = [id_column, PROBABILITY, RISK_BAND, VALUE, EXPECTED_LOSS, *REASONS]
        self.columns = [*self.listed, *REASON_VALUES, *RAW_VALUES]
        self.best = pd.DataFrame({c: pd.Series(dtype="object") for c in self.columns})

    @classmethod
    def from_settings(cls, settings: Settings, id_column: str | None = None) -> RetentionList:
        return cls(
            id_column or settings.id_column,
            settings.retention_value_column,
            settings.retention_top_k,
            ReasonWording(settings.scorer_reason_units),
        )

    def value_warning(self, columns: Iterable[str]) -> str | None:
        """Why expected loss is the bare probability for a batch with these columns, or None."""
        names = list(columns)
        if not self.value_column or self.value_column in names:
            return None
        return (
            f"retention list ranked by churn probability alone: the value column"
            f" {self.value_column!r} (setting RETENTION_VALUE_COLUMN) is not in the batch;"
            f" {columns_hint(names, self.value_column)}"
        )

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
        if len(self.best) >= self.top_k:  # only rows that beat the list's last enter it
            best = best[loss[best] > float(self.best[EXPECTED_LOSS].min())]
        if best.size == 0:
            return
        kept = [self.id_column, PROBABILITY, RISK_BAND, *REASONS, *REASON_VALUES]
        top = predictions.select(kept).take(best)
        frame = top.to_pandas()
        frame[VALUE] = value[best]
        frame[EXPECTED_LOSS] = loss[best]
        for reason, raw in zip(REASONS, RAW_VALUES, strict=True):
            frame[raw] = _customer_values(chunk, top.column(reason), best)
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
        other = RetentionList(self.id_column, self.value_column, self.top_k, self.wording)
        other.best = ranked.reindex(columns=self.columns)
        self.merge(other)

    def table(self) -> pd.DataFrame:
        """The list as people read it: rank, customer, scores, reasons in words."""
        best = self.best.reset_index(drop=True)
        table = best[self.listed].copy()
        for reason, strength, raw in zip(REASONS, REASON_VALUES, RAW_VALUES, strict=True):
            table[reason] = [
                self.wording.reason(column, value, float(weight))
                if isinstance(column, str)
                else None
                for column, weight, value in zip(
                    best[reason], best[strength], best[raw], strict=True
                )
            ]
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
