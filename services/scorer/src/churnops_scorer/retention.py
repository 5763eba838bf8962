"""The retention list: whom to contact in a batch, ordered by the expected profit of contacting.

Each customer's expected profit comes from the calibrated probability, their value (CLV: the
value column times its multiplier, or the campaign's constant) and the campaign's economics
(`churnops_common.ml.economics`). The list is ordered by it, best first, and the profit cut
marks whom to contact: positive expected profit, within the capacity and while the budget
lasts. The list states its totals: customers contacted, expected cost, expected retained value,
expected profit. A batch without the value column is valued at the constant CLV, and
`value_warning` says so, naming the setting.

It is kept as a running selection over chunks: the best `max(top_k, capacity bound)` rows, so
it costs that many rows of memory whatever the batch size (the capacity and the budget bound
whom the cut may contact, so every contacted customer is in the list), and ties keep file order
(chunking does not change it). Without a capacity or budget every customer with positive
expected profit is contacted; the totals then add up over the whole batch as it streams by,
and the list shows the best `top_k` of them.

Each listed customer's reasons are written in words with the customer's own values, read from
the input chunk (`ReasonWording`): only the rows that enter the list are worded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churnops_common.contract import columns_hint
from churnops_common.ml.economics import Economics, Totals, cut
from churnops_scorer.features import numbers
from churnops_scorer.reasons import ReasonWording
from churnops_scorer.scoring import PROBABILITY, REASON_VALUES, REASONS, RISK_BAND, probabilities

if TYPE_CHECKING:
    from churnops_common.settings import Settings

EXPECTED_PROFIT = "expected_profit"
VALUE = "value"
CONTACT = "contact"
RAW_VALUES = [f"{r}_customer_value" for r in REASONS]  # kept beside the list, not shown
_TOTALS_KEY = b"churnops.retention_totals"  # the streamed totals of a split batch's part


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
        economics: Economics,
        top_k: int,
        wording: ReasonWording | None = None,
    ) -> None:
        self.id_column = id_column
        self.economics = economics
        self.value_column = economics.value_column
        self.top_k = top_k
        self.keep = max(top_k, economics.capacity_bound() or 0)
        self.wording = wording or ReasonWording()
        # Reasons are kept as (column, log-odds, the customer's value as text) and worded
        # once, for the rows of the final list (`table`).
        self.listed = [id_column, PROBABILITY, RISK_BAND, VALUE, EXPECTED_PROFIT, *REASONS]
        self.columns = [*self.listed, *REASON_VALUES, *RAW_VALUES]
        self.best = pd.DataFrame({c: pd.Series(dtype="object") for c in self.columns})
        self.profitable = Totals()  # every customer with positive expected profit, so far

    @classmethod
    def from_settings(cls, settings: Settings, id_column: str | None = None) -> RetentionList:
        return cls(
            id_column or settings.id_column,
            Economics.from_settings(settings),
            settings.retention_top_k,
            ReasonWording(settings.scorer_reason_units),
        )

    def value_warning(self, columns: Iterable[str]) -> str | None:
        """Why every customer of a batch with these columns gets the constant CLV, or None."""
        names = list(columns)
        if not self.value_column or self.value_column in names:
            return None
        return (
            f"retention list values every customer at RETENTION_CLV"
            f" ({self.economics.clv:g}): the value column {self.value_column!r}"
            f" (setting RETENTION_VALUE_COLUMN) is not in the batch;"
            f" {columns_hint(names, self.value_column)}"
        )

    def add(self, chunk: pa.Table, predictions: pa.Table) -> None:
        """Merge one input chunk (for the value column) and its predictions, same order."""
        economics = self.economics
        probability = probabilities(predictions)
        raw = None
        if self.value_column and self.value_column in chunk.column_names:
            raw = numbers(chunk.column(self.value_column))
        value = economics.values(raw, len(probability))
        profit = economics.expected_profit(probability, value)
        positive = profit > 0
        self.profitable = self.profitable.plus(
            Totals(
                int(positive.sum()),
                float(economics.expected_cost(probability[positive]).sum()),
                float(economics.expected_retained(probability[positive], value[positive]).sum()),
                float(profit[positive].sum()),
            )
        )
        best = _top_rows(profit, self.keep)
        if len(self.best) >= self.keep:  # only rows that beat the list's last enter it
            best = best[profit[best] > float(self.best[EXPECTED_PROFIT].min())]
        if best.size == 0:
            return
        kept = [self.id_column, PROBABILITY, RISK_BAND, *REASONS, *REASON_VALUES]
        top = predictions.select(kept).take(best)
        frame = top.to_pandas()
        frame[VALUE] = value[best]
        frame[EXPECTED_PROFIT] = profit[best]
        for reason, raw_value in zip(REASONS, RAW_VALUES, strict=True):
            frame[raw_value] = _customer_values(chunk, top.column(reason), best)
        self._merge_rows(frame[self.columns])

    def _merge_rows(self, ranked: pd.DataFrame) -> None:
        """Merge a later part's rows: ties keep this list's rows first."""
        if ranked.empty:
            return
        merged = pd.concat([self.best, ranked], ignore_index=True) if len(self.best) else ranked
        self.best = merged.nlargest(self.keep, EXPECTED_PROFIT, keep="first")

    def save_part(self, path: Path) -> None:
        """A split batch's part of the list: its rows, and its totals in the file's metadata."""
        table = pa.Table.from_pandas(self.best.reset_index(drop=True), preserve_index=False)
        metadata = {**(table.schema.metadata or {}), _TOTALS_KEY: json.dumps(vars(self.profitable))}
        pq.write_table(table.replace_schema_metadata(metadata), path)

    def merge_part(self, source: str | Path | IO[bytes]) -> None:
        """Merge a part saved by `save_part` (a later part)."""
        table = pq.read_table(source)
        self._merge_rows(table.to_pandas().reindex(columns=self.columns))
        saved = (table.schema.metadata or {}).get(_TOTALS_KEY)
        if saved is not None:
            self.profitable = self.profitable.plus(Totals(**json.loads(saved)))

    def _decided(self) -> tuple[pd.DataFrame, Totals]:
        """The kept rows, best first, with the cut; and the campaign's totals."""
        table = self.best.reset_index(drop=True)
        probability = table[PROBABILITY].to_numpy(dtype=np.float64)
        value = table[VALUE].to_numpy(dtype=np.float64)
        profit = table[EXPECTED_PROFIT].to_numpy(dtype=np.float64)
        contact = cut(profit, self.economics.expected_cost(probability), self.economics)
        table.insert(self.columns.index(EXPECTED_PROFIT) + 1, CONTACT, contact)
        if self.economics.capacity_bound() is None:
            return table, self.profitable  # the cut is every positive row of the batch
        economics = self.economics
        p, v = probability[contact], value[contact]
        return table, Totals(
            int(contact.sum()),
            float(economics.expected_cost(p).sum()),
            float(economics.expected_retained(p, v).sum()),
            float(profit[contact].sum()),
        )

    def totals(self) -> Totals:
        return self._decided()[1]

    def table(self) -> pd.DataFrame:
        """The list as people read it: rank, customer, scores, the cut, reasons in words; the
        best `top_k` rows, and every contacted customer beyond them."""
        decided, _ = self._decided()
        shown = (np.arange(len(decided)) < self.top_k) | decided[CONTACT].to_numpy(dtype=bool)
        best = decided.loc[shown].reset_index(drop=True)
        listed: pd.DataFrame = best[[*self.listed[:5], CONTACT, *REASONS]].copy()
        for reason, strength, raw in zip(REASONS, REASON_VALUES, RAW_VALUES, strict=True):
            listed[reason] = [
                self.wording.reason(column, value, float(weight))
                if isinstance(column, str)
                else None
                for column, weight, value in zip(
                    best[reason], best[strength], best[raw], strict=True
                )
            ]
        listed.insert(0, "rank", np.arange(1, len(listed) + 1))
        return listed

    def to_csv_bytes(self) -> bytes:
        """The list for spreadsheets: text that a spreadsheet would run as a formula is
        prefixed with a quote (ids and reasons come from user data)."""
        table = self.table()
        for column in table.columns:
            if not pd.api.types.is_numeric_dtype(table[column]):
                table[column] = table[column].map(spreadsheet_safe)
        table.columns = [spreadsheet_safe(str(c)) for c in table.columns]
        return table.to_csv(index=False).encode("utf-8")

    def summary(self) -> dict[str, float | int | None]:
        """The campaign's totals and the economics that priced them (for people and JSON)."""
        totals, economics = self.totals(), self.economics
        return {
            "contacted": totals.contacted,
            "expected_cost": round(totals.expected_cost, 2),
            "expected_retained_value": round(totals.expected_retained, 2),
            "expected_profit": round(totals.expected_profit, 2),
            "capacity": economics.capacity,
            "budget": economics.budget,
        }


# What Excel, LibreOffice and Sheets read as the start of a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A text cell that starts like a formula, prefixed with `'` so it stays text."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _top_rows(score: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values, largest first, ties in position order."""
    if len(score) > k > 0:
        kth = np.partition(score, len(score) - k)[len(score) - k]
        candidates = np.flatnonzero(score >= kth)  # every tie at the cut, in position order
    else:
        candidates = np.arange(len(score))
    order = np.argsort(-score[candidates], kind="stable")
    return candidates[order][:k]
