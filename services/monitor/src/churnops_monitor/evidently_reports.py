"""Evidently 0.7 reports: data drift, prediction drift and classification quality.

Three separate reports, because their references differ: features are compared with the
reference sample, scores with the reference batch's scores, and classification quality needs
only the current labelled rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churnops_monitor.sources import SCORE

PREDICTION = "predicted_churn"
_NAME_RE = re.compile(r"^([A-Za-z0-9_]+)\((.*)\)$")


@dataclass(frozen=True)
class BuiltReport:
    name: str
    html: Path
    metrics: dict[str, float]


def split_columns(
    reference: pd.DataFrame, current: pd.DataFrame, exclude: set[str]
) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns present on both sides."""
    numeric: list[str] = []
    categorical: list[str] = []
    for column in current.columns:
        if column in exclude or column not in reference.columns:
            continue
        if reference[column].isna().all() or current[column].isna().all():
            continue  # no distribution to compare (and Evidently fails on it)
        both_numeric = all(
            pd.api.types.is_numeric_dtype(f[column]) and not pd.api.types.is_bool_dtype(f[column])
            for f in (reference, current)
        )
        (numeric if both_numeric else categorical).append(column)
    return numeric, categorical


# Evidently embeds the report's data as raw JSON inside a <script> element: a value holding
# `</script>` would end it and run what follows in whoever opens the page. User text (column
# names, categories) goes in with its angle brackets swapped for look-alikes that HTML ignores.
_INERT = str.maketrans({"<": "\uff1c", ">": "\uff1e"})


def inert(text: str) -> str:
    """User text that cannot open or close an HTML element, whatever page embeds it raw."""
    return text.translate(_INERT)


def _prepare(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Same dtypes on both sides: floats, and text with missing as its own category; names
    and categories made inert (see `inert`)."""
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        out[inert(column)] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in categorical:
        text = frame[column].astype(object).where(frame[column].notna(), "(missing)").astype(str)
        out[inert(column)] = text.map(inert)
    return out.reset_index(drop=True)


def flatten_snapshot(snapshot: Any, prefix: str) -> dict[str, float]:
    """Numeric metric values of a snapshot as `prefix.Metric[.column][.field]` keys."""
    flat: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        match = _NAME_RE.match(str(metric.get("metric_name", "")))
        name = match[1] if match else str(metric.get("metric_name", "metric"))
        column = (metric.get("config") or {}).get("column")
        key = f"{prefix}.{name}" + (f".{column}" if column else "")
        value = metric.get("value")
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                if isinstance(sub_value, int | float):
                    flat[f"{key}.{sub}"] = float(sub_value)
        elif isinstance(value, int | float):
            flat[key] = float(value)
    return flat


def _save(snapshot: Any, folder: Path, name: str, prefix: str) -> BuiltReport:
    path = folder / f"{name}.html"
    snapshot.save_html(str(path))  # a Path object silently writes nothing (Evidently 0.7)
    if not path.is_file():
        raise RuntimeError(f"Evidently wrote no HTML to {path}")
    return BuiltReport(name, path, flatten_snapshot(snapshot, prefix))


def data_drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, exclude: set[str], folder: Path
) -> BuiltReport | None:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric, categorical = split_columns(reference, current, exclude)
    if not numeric and not categorical:
        return None
    names = [inert(c) for c in numeric], [inert(c) for c in categorical]
    definition = DataDefinition(numerical_columns=names[0], categorical_columns=names[1])
    ref = Dataset.from_pandas(_prepare(reference, numeric, categorical), data_definition=definition)
    cur = Dataset.from_pandas(_prepare(current, numeric, categorical), data_definition=definition)
    snapshot = Report([DataDriftPreset(columns=names[0] + names[1])]).run(cur, ref)
    return _save(snapshot, folder, "data_drift", "data_drift")


def prediction_drift_report(
    reference_scores: pd.Series, current_scores: pd.Series, folder: Path
) -> BuiltReport:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(numerical_columns=[SCORE])
    ref = Dataset.from_pandas(
        pd.DataFrame({SCORE: reference_scores.astype("float64").values}), data_definition=definition
    )
    cur = Dataset.from_pandas(
        pd.DataFrame({SCORE: current_scores.astype("float64").values}), data_definition=definition
    )
    snapshot = Report([ValueDrift(column=SCORE)]).run(cur, ref)
    return _save(snapshot, folder, "prediction_drift", "prediction_drift")


def classification_report(
    labelled: pd.DataFrame, target: str, threshold: float, folder: Path
) -> BuiltReport | None:
    """Classification quality of the current labelled rows (None without both classes)."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    if labelled[target].nunique() < 2:
        return None
    target = inert(target)
    frame = pd.DataFrame(
        {
            target: labelled[target].astype("int64").values,
            SCORE: labelled[SCORE].astype("float64").values,
            PREDICTION: (labelled[SCORE] >= threshold).astype("int64").values,
        }
    )
    definition = DataDefinition(
        classification=[
            BinaryClassification(
                target=target, prediction_labels=PREDICTION, prediction_probas=SCORE, pos_label=1
            )
        ]
    )
    snapshot = Report([ClassificationPreset()]).run(
        Dataset.from_pandas(frame, data_definition=definition), None
    )
    return _save(snapshot, folder, "classification", "classification")
