"""Evidently 0.7 set up to state the platform's drift verdict, not a second opinion.

Evidently's own PSI bins the two samples together (its bins move with every batch) and drops
missing values, and its default tests pick chi-square or Kolmogorov-Smirnov by column: numbers
and verdicts that differ from the PSI that decides drift here. So its drift method is the
registered test `churnops_psi`, whose score for a column is the platform's PSI of that column
(handed in by the caller, computed on the baseline's fixed bins over every row, missing values
as their own bin), drifted at `PSI_THRESHOLD` exactly as `churnops_common.drift` says. Column
types come from the data contract, so a numeric column stored as text (Telco's `TotalCharges`)
is numeric to Evidently too. Only services that depend on Evidently import this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import TYPE_CHECKING, Any

from churnops_common.contract import FEATURE_ROLES
from churnops_common.drift import is_drifted

if TYPE_CHECKING:
    import pandas as pd

    from churnops_common.contract import Schema

METHOD = "churnops_psi"
_SCORES: ContextVar[Mapping[str, float] | None] = ContextVar("churnops_psi_scores", default=None)


class MissingPlatformPsi(KeyError):
    """Evidently asked for a column the caller gave no PSI for (a bug, never a silent guess)."""


def _platform_psi(
    reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float
) -> tuple[float, bool]:
    scores = _SCORES.get()
    name = str(reference.name)
    if scores is None or name not in scores:
        raise MissingPlatformPsi(f"no platform PSI for column {name!r}")
    value = float(scores[name])
    return value, is_drifted(value, threshold)


@cache
def platform_method() -> str:
    """Register `churnops_psi` with Evidently (once per process) and return its name."""
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    test = StatTest(
        name=METHOD,
        display_name="PSI (ChurnOps, baseline bins)",
        allowed_feature_types=[ColumnType.Numerical, ColumnType.Categorical],
        default_threshold=0.2,
    )
    register_stattest(test, _platform_psi)
    return METHOD


@contextmanager
def platform_scores(scores: Mapping[str, float]) -> Iterator[None]:
    """Evidently runs inside this see `scores` (column -> PSI) as their drift scores."""
    token = _SCORES.set(dict(scores))
    try:
        yield
    finally:
        _SCORES.reset(token)


def any_drift_share(columns: int) -> float:
    """Evidently's `drift_share` for 'the dataset drifted when any column did' (ours)."""
    return 1.0 / max(columns, 1)


# Evidently embeds the report's data as raw JSON inside a <script> element: a value holding
# `</script>` would end it and run what follows in whoever opens the page. User text (column
# names, categories) goes in with its angle brackets swapped for look-alikes that HTML ignores.
_INERT = str.maketrans({"<": "\uff1c", ">": "\uff1e"})


def inert(text: str) -> str:
    """User text that cannot open or close an HTML element, whatever page embeds it raw."""
    return text.translate(_INERT)


def column_types(
    schema: Schema | None, columns: list[str], reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[list[str], list[str]]:
    """(numeric, categorical) among `columns`: the contract's roles; without a contract, numeric
    when both sides hold numbers. A numeric column with no number on one side is compared as
    text (all '(missing)'): Evidently fails on an empty numeric column, and dropping it would
    change the count of compared features."""
    import pandas as pd

    numeric: list[str] = []
    categorical: list[str] = []
    for column in columns:
        spec = schema.column(column) if schema is not None else None
        if spec is not None and spec.role in FEATURE_ROLES:
            is_numeric = spec.role == "numeric" or (
                spec.role == "constant" and spec.minimum is not None
            )
        else:
            is_numeric = all(
                pd.api.types.is_numeric_dtype(f[column])
                and not pd.api.types.is_bool_dtype(f[column])
                for f in (reference, current)
            )
        if is_numeric and any(_numbers(f[column]).isna().all() for f in (reference, current)):
            is_numeric = False
        (numeric if is_numeric else categorical).append(column)
    return numeric, categorical


def _numbers(series: pd.Series) -> pd.Series:
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(series):
        series = series.astype("string").str.strip()
    return pd.to_numeric(series, errors="coerce")


def prepare(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Same dtypes on both sides: numbers as floats (text such as ' ' becomes missing), text with
    missing as its own category; names and categories made inert (see `inert`)."""
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        out[inert(column)] = _numbers(frame[column]).astype("float64")
    for column in categorical:
        text = frame[column].astype(object).where(frame[column].notna(), "(missing)").astype(str)
        out[inert(column)] = text.map(inert)
    return out.reset_index(drop=True)


def save_html(snapshot: Any, path: str, banner: str | None = None) -> None:
    """Write the snapshot's page; `banner` (already escaped HTML) goes on top of it, so the
    page opens with the platform's verdict in words."""
    html: str = snapshot.get_html_str(as_iframe=False)
    if banner:
        html = html.replace("<body>", f"<body>{banner}", 1)
    with open(path, "w", encoding="utf-8") as out:
        out.write(html)
