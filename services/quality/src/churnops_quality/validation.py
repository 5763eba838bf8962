"""Validation of a landed table against the schema, chunk by chunk, with specific reasons.

Each finding is an `Issue` naming the column, how many rows and example values. Errors reject
the file; warnings ride along on `DataValidated`. How strict is configurable (`QualityRules`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from churnops_common.contract import NEGATIVE_WORDS, POSITIVE_WORDS, Schema, columns_hint
from churnops_common.events import DataKind
from churnops_common.settings import Settings
from churnops_quality.schema import (
    Factorized,
    blank_to_na,
    category_strings,
    coerce_numeric,
    factorize,
)
from churnops_quality.text_hash import text_hashes

Severity = Literal["error", "warning"]
MAX_EXAMPLES = 5
_MAX_TRACKED_VALUES = 1000  # distinct unseen categories / target values remembered per column


MAX_MESSAGE_CHARS = 500  # one issue's message (it may quote a header of any length)
MAX_EXAMPLE_CHARS = 100
MAX_REASON_CHARS = 2000  # all of a rejection's reasons together


def capped(text: str, limit: int) -> str:
    """At most `limit` characters, saying how much was cut; NUL shown as `\\0` (Postgres
    cannot store it in text, and a reason that cannot be recorded is a reason lost)."""
    text = text.replace("\x00", "\\0")
    if len(text) <= limit:
        return text
    note = f"... ({len(text) - limit} more characters)"
    return text[: max(limit - len(note), 0)] + note


class Issue(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity
    message: str
    column: str | None = None
    rows: int | None = None
    examples: list[str] = Field(default_factory=list)

    # User data ends up in these (a 1.2 MB header became a 1.2 MB reason): keep them short.
    @field_validator("message")
    @classmethod
    def _short_message(cls, value: str) -> str:
        return capped(value, MAX_MESSAGE_CHARS)

    @field_validator("column")
    @classmethod
    def _short_column(cls, value: str | None) -> str | None:
        return None if value is None else capped(value, MAX_EXAMPLE_CHARS)

    @field_validator("examples")
    @classmethod
    def _short_examples(cls, value: list[str]) -> list[str]:
        return [capped(example, MAX_EXAMPLE_CHARS) for example in value[:20]]


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["accepted", "rejected"]
    rows: int
    has_target: bool
    issues: list[Issue]
    # Share of positive outcomes among the rows with a known outcome (None: no target).
    target_rate: float | None = None

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(i.message for i in self.issues if i.severity == "warning")

    @property
    def reason(self) -> str:
        return capped("; ".join(i.message for i in self.errors), MAX_REASON_CHARS)


@dataclass(frozen=True)
class QualityRules:
    id_column: str
    target_column: str
    max_bad_value_share: float = 0.0
    allow_duplicate_ids: bool = False
    reject_unseen_categories: bool = False
    null_rate_jump: float = 0.2
    # Where the id and target names came from, for messages: the contract or the settings.
    id_source: str = "ID_COLUMN"
    target_source: str = "TARGET_COLUMN"

    @classmethod
    def from_settings(cls, settings: Settings, contract: Schema | None = None) -> QualityRules:
        """The rules; a model's contract, where there is one, names the id and target."""
        named = f"the contract of model {settings.mlflow_model_name!r}"
        id_column = contract.id_column if contract and contract.id_column else None
        target_column = contract.target_column if contract and contract.target_column else None
        return cls(
            id_column=id_column or settings.id_column,
            target_column=target_column or settings.target_column,
            id_source=named if id_column else "ID_COLUMN",
            target_source=named if target_column else "TARGET_COLUMN",
            max_bad_value_share=settings.quality_max_bad_value_share,
            allow_duplicate_ids=settings.quality_allow_duplicate_ids,
            reject_unseen_categories=settings.quality_reject_unseen_categories,
            null_rate_jump=settings.quality_null_rate_jump,
        )


def _quote(values: list[str]) -> str:
    return ", ".join(repr(v) for v in values)


@dataclass
class _Tally:
    """Per-column counts over all chunks."""

    nulls: int = 0
    bad: int = 0
    bad_examples: list[str] = field(default_factory=list)
    values: Counter[str] = field(default_factory=Counter)


class Validator:
    """Feed it the header, then every chunk, then ask for the verdict."""

    def __init__(self, kind: DataKind, schema: Schema | None, rules: QualityRules) -> None:
        self.kind = kind
        self.schema = schema
        self.rules = rules
        self.issues: list[Issue] = []
        self.rows = 0
        self.columns: list[str] = []
        self.tallies: dict[str, _Tally] = {}
        self.seen_ids = np.empty(0, dtype="uint64")
        self.duplicates = _Tally()
        self.target_present = 0
        # The current chunk's categorical columns as factorized here, for the PSI count.
        self.factorized: dict[str, Factorized] = {}

    # -- header -----------------------------------------------------------------------------
    def check_header(self, columns: list[str]) -> None:
        self.columns = list(columns)
        self.tallies = {c: _Tally() for c in self.columns}
        id_col, target = self.rules.id_column, self.rules.target_column
        if id_col not in columns:
            self.error(
                "missing_id",
                f"no '{id_col}' id column ({self.rules.id_source});"
                f" {columns_hint(columns, id_col)}",
                column=id_col,
            )
        if self.kind in ("labels", "training") and target not in columns:
            self.error(
                "missing_target",
                f"a {self.kind} file needs the '{target}' target column"
                f" ({self.rules.target_source}); {columns_hint(columns, target)}",
                column=target,
            )
        if self.kind == "labels":
            extra = [c for c in columns if c not in (id_col, target) and not _is_date_name(c)]
            if extra:
                self.warn("extra_columns", f"labels file: extra columns ignored: {_quote(extra)}")
            return
        if self.schema is None:
            return
        expected = [c.name for c in self.schema.features]
        missing = [c for c in expected if c not in columns]
        if missing:
            message = (
                f"missing {len(missing)} column(s) the baseline schema expects: {_quote(missing)}"
            )
            if self.kind == "training":
                self.warn("missing_columns", message)
            else:
                self.error("missing_columns", message, examples=missing)
        known = set(self.schema.names) | {id_col, target}
        extra = [c for c in columns if c not in known]
        if extra:
            self.warn("extra_columns", f"extra columns not in the baseline schema: {_quote(extra)}")

    # -- rows -------------------------------------------------------------------------------
    def update(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """Tally one chunk; returns it with numeric columns as numbers (text ones as missing)."""
        start = self.rows
        self.rows += len(chunk)
        self.factorized = {}
        for name in self.columns:
            if name not in chunk.columns:
                continue
            series = chunk[name]
            tally = self.tallies[name]
            id_missing: int | None = None
            if name == self.rules.id_column:
                id_missing = self._ids(series, start)
            elif name == self.rules.target_column:
                self._target(series, tally)
            spec = self.schema.column(name) if self.schema else None
            if spec is not None and spec.role == "numeric":
                values, bad = coerce_numeric(series)
                tally.nulls += int(values.isna().sum() - bad.sum())
                self._bad_numbers(series, bad, tally, start)
                chunk[name] = values
            elif spec is not None and spec.role == "categorical":
                factors = self.factorized[name] = factorize(series)
                tally.nulls += self._unseen_categories(factors, spec.categories, tally)
            elif id_missing is not None:
                tally.nulls += id_missing  # _nulls' rule, already applied by _ids
            else:
                tally.nulls += int(_nulls(series))
        return chunk

    def _ids(self, series: pd.Series, start: int) -> int:
        """Tally missing and repeated ids; returns how many rows have no id."""
        text = blank_to_na(series)
        missing = text.isna().to_numpy()
        tally = self.tallies[self.rules.id_column]
        if missing.any():
            rows = (np.flatnonzero(missing)[:MAX_EXAMPLES] + start + 1).tolist()
            tally.bad += int(missing.sum())
            tally.bad_examples.extend(f"row {r}" for r in rows)
        present = text[~missing]
        hashes = text_hashes(pa.array(present.array, type=pa.large_string()))
        within = pd.Series(hashes).duplicated().to_numpy()
        repeated = within | _in_sorted(hashes, self.seen_ids)
        if repeated.any():
            self.duplicates.bad += int(repeated.sum())
            room = MAX_EXAMPLES - len(self.duplicates.bad_examples)
            examples = present[repeated].unique()[: max(room, 0)]
            self.duplicates.bad_examples.extend(str(v) for v in examples)
        # Sorted, so the next chunk looks its ids up by bisection; a stable sort merges the
        # sorted ids seen so far with this chunk in about linear time (np.union1d and np.isin
        # re-sort everything per chunk: 16 s of a 1M-row file's validation).
        self.seen_ids = np.sort(np.concatenate([self.seen_ids, hashes]), kind="stable")
        return int(missing.sum())

    def _target(self, series: pd.Series, tally: _Tally) -> None:
        text = category_strings(series).str.strip().str.lower()
        self.target_present += int(text.notna().sum())
        self._remember(tally.values, text.dropna())

    def _bad_numbers(self, series: pd.Series, bad: pd.Series, tally: _Tally, start: int) -> None:
        count = int(bad.sum())
        if not count:
            return
        tally.bad += count
        room = MAX_EXAMPLES - len(tally.bad_examples)
        if room > 0:
            positions = np.flatnonzero(bad.to_numpy())[:room]
            tally.bad_examples.extend(
                f"{series.iloc[p]!r} (row {start + p + 1})" for p in positions
            )

    @staticmethod
    def _unseen_categories(factorized: Factorized, categories: list[str], tally: _Tally) -> int:
        """Count values outside `categories` into the tally; returns the missing count."""
        codes, uniques, counts = factorized
        blank = blank_to_na(uniques).isna().to_numpy()
        unseen = ~blank & ~category_strings(uniques).isin(categories).to_numpy()
        for value, count in zip(category_strings(uniques)[unseen], counts[unseen], strict=True):
            if value in tally.values or len(tally.values) < _MAX_TRACKED_VALUES:
                tally.values[str(value)] += int(count)
        return int((codes < 0).sum() + counts[blank].sum())

    @staticmethod
    def _remember(counter: Counter[str], values: pd.Series) -> None:
        for value, count in values.value_counts().items():
            if value in counter or len(counter) < _MAX_TRACKED_VALUES:
                counter[str(value)] += int(count)

    # -- verdict ----------------------------------------------------------------------------
    def finish(self) -> Verdict:
        if self.rows == 0 and not any(i.code == "header_only" for i in self.issues):
            self.error("header_only", f"header only: {len(self.columns)} columns and no data rows")
        elif self.rows:
            self._check_ids()
            self._check_target()
            for name in self.columns:
                self._check_column(name)
        errors = any(i.severity == "error" for i in self.issues)
        has_target = self.rules.target_column in self.columns and self.target_present > 0
        return Verdict(
            status="rejected" if errors else "accepted",
            rows=self.rows,
            has_target=has_target,
            issues=self.issues,
            target_rate=self._target_rate() if has_target else None,
        )

    def _target_rate(self) -> float | None:
        tally = self.tallies.get(self.rules.target_column)
        if tally is None:
            return None
        positive = sum(n for word, n in tally.values.items() if word in POSITIVE_WORDS)
        negative = sum(n for word, n in tally.values.items() if word in NEGATIVE_WORDS)
        return positive / (positive + negative) if positive + negative else None

    def _check_ids(self) -> None:
        id_col = self.rules.id_column
        tally = self.tallies.get(id_col)
        if tally is None:
            return
        if tally.bad:
            self.error(
                "missing_ids",
                f"column '{id_col}': {tally.bad} of {self.rows} rows have"
                f" no id ({', '.join(tally.bad_examples)})",
                column=id_col,
                rows=tally.bad,
                examples=tally.bad_examples,
            )
        dup = self.duplicates
        if dup.bad:
            message = (
                f"column '{id_col}': {dup.bad} rows repeat an id seen earlier in the file"
                f" (e.g. {_quote(dup.bad_examples)})"
            )
            if self.rules.allow_duplicate_ids:
                self.warn(
                    "duplicate_ids", message, column=id_col, rows=dup.bad, examples=dup.bad_examples
                )
            else:
                self.error(
                    "duplicate_ids", message, column=id_col, rows=dup.bad, examples=dup.bad_examples
                )

    def _check_target(self) -> None:
        target = self.rules.target_column
        tally = self.tallies.get(target)
        if tally is None:
            return
        missing = self.rows - self.target_present
        if missing and self.kind in ("labels", "training"):
            self.error(
                "missing_target_values",
                f"column '{target}': {missing} of {self.rows} rows have no outcome",
                column=target,
                rows=missing,
            )
        bad = sorted(set(tally.values) - POSITIVE_WORDS - NEGATIVE_WORDS)
        if bad:
            count = sum(tally.values[v] for v in bad)
            self.error(
                "bad_target",
                f"column '{target}': {count} rows hold values outside the target vocabulary"
                f" (e.g. {_quote(bad[:MAX_EXAMPLES])}); use 0/1, true/false, yes/no or"
                " churned/stayed",
                column=target,
                rows=count,
                examples=bad[:MAX_EXAMPLES],
            )

    def _check_column(self, name: str) -> None:
        tally = self.tallies[name]
        if name in (self.rules.id_column, self.rules.target_column):
            if (
                tally.nulls == self.rows
                and name == self.rules.target_column
                and self.kind == "new_data"
            ):
                self.warn("empty_target", f"column '{name}' is empty: no outcomes to evaluate")
            return
        spec = self.schema.column(name) if self.schema else None
        if tally.nulls == self.rows:
            message = f"column '{name}' is empty: all {self.rows} rows are missing"
            if spec is not None or self.kind == "training":
                self.error("all_null", message, column=name, rows=self.rows)
            else:
                self.warn("all_null", message, column=name, rows=self.rows)
            return
        if tally.bad:
            share = tally.bad / self.rows
            message = (
                f"column '{name}' is numeric but {tally.bad} of {self.rows} rows hold text"
                f" (e.g. {', '.join(tally.bad_examples)})"
            )
            if share > self.rules.max_bad_value_share:
                self.error(
                    "text_in_numeric",
                    message,
                    column=name,
                    rows=tally.bad,
                    examples=tally.bad_examples,
                )
            else:
                self.warn(
                    "text_in_numeric",
                    message + "; read as missing",
                    column=name,
                    rows=tally.bad,
                    examples=tally.bad_examples,
                )
        if tally.values:
            self._unseen(name, tally.values)
        if spec is not None and self.kind != "labels":
            rate = tally.nulls / self.rows
            if rate - spec.null_rate > self.rules.null_rate_jump:
                self.warn(
                    "null_rate_jump",
                    f"column '{name}': {rate:.0%} missing, baseline {spec.null_rate:.0%}",
                    column=name,
                    rows=tally.nulls,
                )

    def _unseen(self, name: str, values: Counter[str]) -> None:
        count = sum(values.values())
        top = values.most_common(MAX_EXAMPLES)
        shown = ", ".join(f"{v!r} x{n}" for v, n in top)
        message = (
            f"column '{name}': {count} rows hold {len(values)} categor"
            f"{'y' if len(values) == 1 else 'ies'} not in the baseline (e.g. {shown})"
        )
        examples = [v for v, _ in top]
        if self.rules.reject_unseen_categories:
            self.error("unseen_categories", message, column=name, rows=count, examples=examples)
        else:
            self.warn("unseen_categories", message, column=name, rows=count, examples=examples)

    # -- helpers ----------------------------------------------------------------------------
    def error(self, code: str, message: str, **extra: object) -> None:
        self.issues.append(Issue(code=code, severity="error", message=message, **extra))

    def warn(self, code: str, message: str, **extra: object) -> None:
        self.issues.append(Issue(code=code, severity="warning", message=message, **extra))


def _nulls(series: pd.Series) -> int:
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return int(series.isna().sum())
    codes, uniques, counts = factorize(series)
    return int((codes < 0).sum() + counts[blank_to_na(uniques).isna().to_numpy()].sum())


def _is_date_name(name: str) -> bool:
    lowered = name.lower()
    return "date" in lowered or "time" in lowered or lowered.endswith("_at")


def _in_sorted(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Mask of `values` present in the ascending array `sorted_values`, by bisection."""
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    found: np.ndarray = sorted_values[at] == values
    return found
