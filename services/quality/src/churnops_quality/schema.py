"""Schema inference: what each column of a training table is, so later files can be checked.

Roles: id, target, numeric, categorical, datetime, constant, text. Numbers stored as text with
blanks (Telco's `TotalCharges`: " " for new customers) are numeric: blanks count as missing.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from churnops_common.contract import ColumnSpec, Role, Schema, positive_label

# A text column with more distinct values than this is free text (names, comments), not a category.
MAX_CATEGORIES = 100
# A numeric column is a row number when it holds distinct whole numbers, none missing, that fill
# at least half of the range they span (a running count of the file's rows, or a sample of
# one), in a table of at least this many rows. A customer number is sparser than that.
ROW_NUMBER_MIN_ROWS = 100
# A text column is numeric when at least this share of its non-blank values parse as numbers;
# the rest are then "text in a numeric column", which validation reports.
NUMERIC_PARSE_SHARE = 0.95
# Column names that mean "the customer's id" and "the outcome" when the settings' names are absent.
_ID_NAMES = {"id", "customerid", "clientid", "userid", "accountid", "customer"}
_TARGET_NAMES = {"churn", "churned", "exited", "target", "label", "attrition"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?.*)?$")


def normalise_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def find_id_column(frame: pd.DataFrame, preferred: str | None) -> str | None:
    """The settings' id column when present, else a uniquely valued column named like an id."""
    if preferred and preferred in frame.columns:
        return preferred
    for name in frame.columns:
        if normalise_name(str(name)) in _ID_NAMES and frame[name].is_unique:
            return str(name)
    return None


def find_target_column(frame: pd.DataFrame, preferred: str | None) -> str | None:
    """The settings' target column when present, else a two-valued column named like one."""
    if preferred and preferred in frame.columns:
        return preferred
    for name in frame.columns:
        if normalise_name(str(name)) in _TARGET_NAMES and frame[name].nunique() <= 2:
            return str(name)
    return None


def blank_to_na(series: pd.Series) -> pd.Series:
    """Text with surrounding spaces stripped, and empty strings as missing."""
    text = series.astype("string").str.strip()
    return text.mask(text == "")


def coerce_numeric(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float values, mask of non-blank values that are not numbers). Blanks become missing."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series.astype("float64"), pd.Series(False, index=series.index)
    codes, uniques, _ = factorize(series)  # parse each distinct text once
    text = blank_to_na(uniques)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    not_numbers = (text.notna() & np.isnan(numbers)).to_numpy()
    values = np.append(numbers, np.nan)[codes]  # code -1 (missing) picks the appended NaN
    bad = np.append(not_numbers, False)[codes]
    return pd.Series(values, index=series.index), pd.Series(bad, index=series.index)


def category_strings(series: pd.Series) -> pd.Series:
    """Values as text for comparison with stored categories: integral floats lose their `.0`."""
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        finite = values[~np.isnan(values)]
        if finite.size == 0 or np.all(finite == np.round(finite)):
            return series.astype("Int64").astype("string")
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series.astype("string")
    return series.astype("string")


def _looks_like_dates(text: pd.Series) -> bool:
    sample = text.dropna().head(1000)
    if sample.empty or not sample.map(lambda v: bool(_DATE_RE.match(str(v)))).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="ISO8601")
    return bool(parsed.notna().all())


# What `factorize` returns: (code per row, distinct values, rows per distinct value).
type Factorized = tuple[np.ndarray, pd.Series, np.ndarray]


def factorize(series: pd.Series) -> Factorized:
    """(code per row, -1 for missing; the distinct values; how many rows hold each).

    Work on distinct values instead of rows: a million rows of a 5-value column cost one
    hashing pass, then every string operation runs on 5 values.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    return codes, pd.Series(uniques, dtype=series.dtype), counts


def category_codes(
    series: pd.Series, categories: list[str], factorized: Factorized | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(index into `categories` per row: -1 unseen, -2 missing; boolean "missing" per row).
    `factorized`: `factorize(series)`, when the caller has it already."""
    codes, uniques, _ = factorized if factorized is not None else factorize(series)
    table = pd.Index(categories).get_indexer(pd.Index(category_strings(uniques)))
    table = np.append(table, -2)  # code -1 (missing) picks the last entry
    return table[codes], codes < 0


def infer_column(series: pd.Series, name: str) -> ColumnSpec:
    """One column's role and reference facts (for a column that is neither id nor target)."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return _numeric_spec(series.astype("float64"), name, str(series.dtype), False)
    rows = len(series)
    codes, uniques, counts = factorize(series)
    text = blank_to_na(uniques)
    blank = text.isna().to_numpy()
    nulls = int((codes < 0).sum() + counts[blank].sum())
    numbers = pd.to_numeric(text, errors="coerce")
    bad = ~blank & numbers.isna().to_numpy()
    non_blank = rows - nulls
    if non_blank and int(counts[bad].sum()) / non_blank <= 1 - NUMERIC_PARSE_SHARE:
        values = pd.Series(numbers.to_numpy(dtype="float64", na_value=np.nan)[codes])
        values[codes < 0] = np.nan
        return _numeric_spec(values, name, str(series.dtype), True)
    null_rate = nulls / rows if rows else 0.0
    distinct = int(text.nunique())
    dtype = str(series.dtype)
    if distinct and _looks_like_dates(text):
        return ColumnSpec(
            name=name, role="datetime", dtype=dtype, null_rate=null_rate, distinct=distinct
        )
    if distinct > MAX_CATEGORIES:
        return ColumnSpec(
            name=name, role="text", dtype=dtype, null_rate=null_rate, distinct=distinct
        )
    categories = sorted({str(v) for v in category_strings(uniques).dropna()})
    return ColumnSpec(
        name=name,
        role="constant" if distinct <= 1 else "categorical",
        dtype=dtype,
        categories=categories,
        null_rate=null_rate,
        distinct=distinct,
    )


def _numeric_spec(values: pd.Series, name: str, dtype: str, as_text: bool) -> ColumnSpec:
    rows = len(values)
    distinct = int(values.nunique())
    role: Role = "constant" if distinct == 1 else "numeric"
    if _counts_rows(values, distinct):
        role = "row_number"
    return ColumnSpec(
        name=name,
        role=role,
        dtype=dtype,
        stored_as_text=as_text,
        categories=[_number_text(values.dropna().iloc[0])] if role == "constant" else [],
        minimum=_finite(values.min()),
        maximum=_finite(values.max()),
        null_rate=float(values.isna().sum()) / rows if rows else 0.0,
        distinct=distinct,
    )


def _finite(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if np.isfinite(number) else None


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _counts_rows(values: pd.Series, distinct: int) -> bool:
    """Distinct whole numbers in every row, densely covering their range (ROW_NUMBER_*)."""
    rows = len(values)
    if rows < ROW_NUMBER_MIN_ROWS or distinct != rows:
        return False
    numbers = values.to_numpy(dtype="float64")
    if not np.isfinite(numbers).all() or not np.array_equal(numbers, np.round(numbers)):
        return False
    return float(numbers.max() - numbers.min()) + 1 <= 2 * rows


def infer_schema(
    frame: pd.DataFrame,
    id_column: str | None = None,
    target_column: str | None = None,
    source: str = "",
) -> Schema:
    """Each column's role, dtype, categories, range and null rate, from a training table."""
    id_name = find_id_column(frame, id_column)
    target_name = find_target_column(frame, target_column)
    columns: list[ColumnSpec] = []
    rows = len(frame)
    for raw_name in frame.columns:
        name = str(raw_name)
        series = frame[raw_name]
        null_rate = float(series.isna().mean()) if rows else 0.0
        if name == id_name:
            columns.append(
                ColumnSpec(
                    name=name,
                    role="id",
                    dtype=str(series.dtype),
                    null_rate=null_rate,
                    distinct=int(series.nunique()),
                )
            )
        elif name == target_name:
            categories = sorted(str(v) for v in category_strings(series).dropna().unique())
            columns.append(
                ColumnSpec(
                    name=name,
                    role="target",
                    dtype=str(series.dtype),
                    categories=categories,
                    null_rate=null_rate,
                    distinct=len(categories),
                )
            )
        else:
            columns.append(infer_column(series, name))
    return Schema(
        id_column=id_name,
        target_column=target_name,
        columns=columns,
        rows=rows,
        source=source,
        positive_label=positive_label(frame[target_name]) if target_name else None,
    )


__all__ = ["ColumnSpec", "Role", "Schema", "infer_schema"]
