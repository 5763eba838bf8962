"""Segment metrics: the same model judged on slices of the population, worst slices flagged.

Segment columns are configurable; by default every low-cardinality column (categoricals and
small-integer codes) plus quartile buckets of the model's key numeric columns, "key" meaning
the numeric columns that most often appear among the predictions' top reasons.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import roc_auc_score

MAX_CATEGORIES = 12  # more distinct values than this: bucket it (numeric) or skip it (text)
NUMERIC_BUCKETS = 4
KEY_NUMERIC_COLUMNS = 4
MIN_SEGMENT_ROWS = 30  # smaller segments are reported but never flagged: too noisy
AUC_MARGIN = 0.05  # flagged when AUC is this far below the whole population's
# ... or when its balanced error rate (mean of FPR and FNR) is this far above it. Balanced,
# because a high-risk segment trades false negatives for false positives by its base rate alone.
ERROR_MARGIN = 0.10
MISSING = "(missing)"
REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")


class SegmentRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    segment_column: str
    segment_value: str
    rows: int
    positive_rate: float | None
    mean_score: float | None
    false_positive_rate: float | None
    false_negative_rate: float | None
    roc_auc: float | None
    flagged: bool = False


def _rate(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def key_numeric_columns(frame: pd.DataFrame, candidates: Sequence[str]) -> list[str]:
    """Numeric columns ordered by how often they are a top reason, then by table order."""
    counts: Counter[str] = Counter()
    for column in REASON_COLUMNS:
        if column in frame:
            counts.update(frame[column].dropna().astype(str))
    ranked = sorted(candidates, key=lambda c: (-counts.get(c, 0), list(candidates).index(c)))
    return ranked[:KEY_NUMERIC_COLUMNS]


def default_segment_columns(frame: pd.DataFrame, exclude: Iterable[str]) -> list[str]:
    """Low-cardinality columns plus the key numeric columns (which get quantile buckets)."""
    skip = set(exclude)
    low_card, numeric = [], []
    for column in frame.columns:
        if column in skip:
            continue
        distinct = frame[column].nunique(dropna=True)
        if distinct < 2:
            continue
        if distinct <= MAX_CATEGORIES:
            low_card.append(column)
        elif _is_numeric(frame[column]):
            numeric.append(column)
    return low_card + key_numeric_columns(frame, numeric)


def segment_labels(series: pd.Series) -> pd.Series:
    """The segment each row falls in: its value, or its quartile bucket for a wide numeric."""
    if _is_numeric(series) and series.nunique(dropna=True) > MAX_CATEGORIES:
        buckets = pd.qcut(series, NUMERIC_BUCKETS, duplicates="drop")
        labels = buckets.astype(str)
        return labels.where(series.notna(), MISSING)
    return series.astype(object).where(series.notna(), MISSING).astype(str)


def _segment(
    column: str, value: str, truth: np.ndarray, score: np.ndarray, threshold: float
) -> SegmentRow:
    predicted = score >= threshold
    positives, negatives = float(truth.sum()), float(truth.size - truth.sum())
    both = 0 < positives < truth.size
    return SegmentRow(
        segment_column=column,
        segment_value=value,
        rows=int(truth.size),
        positive_rate=_rate(positives, truth.size),
        mean_score=float(score.mean()) if score.size else None,
        false_positive_rate=_rate(float(np.sum(predicted & (truth == 0))), negatives),
        false_negative_rate=_rate(float(np.sum(~predicted & (truth == 1))), positives),
        roc_auc=float(roc_auc_score(truth, score)) if both else None,
    )


def _worse(
    value: float | None, reference: float | None, margin: float, higher_is_worse: bool
) -> bool:
    if value is None or reference is None:
        return False
    return value >= reference + margin if higher_is_worse else value <= reference - margin


def balanced_error(row: SegmentRow) -> float | None:
    if row.false_positive_rate is None or row.false_negative_rate is None:
        return None
    return (row.false_positive_rate + row.false_negative_rate) / 2


def flag_worst(rows: list[SegmentRow], overall: SegmentRow) -> list[SegmentRow]:
    """Flag segments big enough to matter whose AUC or error rates are clearly worse."""
    flagged = []
    for row in rows:
        bad = row.rows >= MIN_SEGMENT_ROWS and (
            _worse(row.roc_auc, overall.roc_auc, AUC_MARGIN, higher_is_worse=False)
            or _worse(balanced_error(row), balanced_error(overall), ERROR_MARGIN, True)
        )
        flagged.append(row.model_copy(update={"flagged": bad}))
    return flagged


def segment_metrics(
    frame: pd.DataFrame,
    *,
    target: str,
    score: str,
    threshold: float,
    columns: Sequence[str],
) -> list[SegmentRow]:
    """One row per (column, segment) of a labelled, scored frame, worst ones flagged."""
    truth = frame[target].to_numpy(dtype=np.int64)
    scores = frame[score].to_numpy(dtype=np.float64)
    overall = _segment("*", "*", truth, scores, threshold)
    rows: list[SegmentRow] = []
    for column in columns:
        if column not in frame:
            continue
        labels = segment_labels(frame[column]).to_numpy()
        for value in sorted(set(labels)):
            mask = labels == value
            rows.append(_segment(column, str(value), truth[mask], scores[mask], threshold))
    return flag_worst(rows, overall)
