"""Evidently 0.7 reports: data drift, prediction drift and classification quality.

Three separate reports, because their references differ: features are compared with the
reference sample, scores with the reference batch's scores, and classification quality needs
only the current labelled rows. Drift is PSI at the platform's threshold throughout, column
types come from the data contract (`churnops_common.evidently_drift`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churnops_common.drift import score_psi
from churnops_common.evidently_drift import (
    any_drift_share,
    column_types,
    inert,
    platform_method,
    platform_scores,
    prepare,
)
from churnops_common.evidently_drift import save_html as save_page
from churnops_monitor.sources import SCORE

if TYPE_CHECKING:
    from churnops_common.contract import Schema

__all__ = ["BuiltReport", "inert", "split_columns"]

PREDICTION = "predicted_churn"
_NAME_RE = re.compile(r"^([A-Za-z0-9_]+)\((.*)\)$")


@dataclass(frozen=True)
class BuiltReport:
    name: str
    html: Path
    metrics: dict[str, float]


def split_columns(
    reference: pd.DataFrame, current: pd.DataFrame, exclude: set[str], schema: Schema | None = None
) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns present on both sides, typed by the contract."""
    columns = [
        column
        for column in current.columns
        if column not in exclude
        and column in reference.columns
        # no distribution to compare (and Evidently fails on it)
        and not (reference[column].isna().all() or current[column].isna().all())
    ]
    return column_types(schema, columns, reference, current)


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
    save_page(snapshot, str(path))
    if not path.is_file():
        raise RuntimeError(f"Evidently wrote no HTML to {path}")
    return BuiltReport(name, path, flatten_snapshot(snapshot, prefix))


def data_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    exclude: set[str],
    folder: Path,
    *,
    threshold: float,
    schema: Schema | None = None,
) -> BuiltReport | None:
    """The window's batches merged against the reference: Evidently's PSI at the platform's
    threshold, column types from the contract (each batch's own verdict is its quality run's)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric, categorical = split_columns(reference, current, exclude, schema)
    if not numeric and not categorical:
        return None
    names = [inert(c) for c in numeric], [inert(c) for c in categorical]
    definition = DataDefinition(numerical_columns=names[0], categorical_columns=names[1])
    ref = Dataset.from_pandas(prepare(reference, numeric, categorical), data_definition=definition)
    cur = Dataset.from_pandas(prepare(current, numeric, categorical), data_definition=definition)
    columns = names[0] + names[1]
    preset = DataDriftPreset(
        columns=columns,
        method="psi",
        threshold=threshold,
        drift_share=any_drift_share(len(columns)),
    )
    snapshot = Report([preset]).run(cur, ref)
    built = _save(snapshot, folder, "data_drift", "data_drift")
    built.metrics["data_drift.columns"] = float(len(columns))
    return built


def prediction_drift_report(
    reference_scores: pd.Series, current_scores: pd.Series, folder: Path, threshold: float
) -> BuiltReport:
    """PSI of the churn probabilities (the platform's, on the reference's deciles), shown by
    Evidently with both distributions; drifted at the same threshold as the features."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    psi = score_psi(reference_scores.to_numpy(), current_scores.to_numpy())
    definition = DataDefinition(numerical_columns=[SCORE])
    ref = Dataset.from_pandas(
        pd.DataFrame({SCORE: reference_scores.astype("float64").values}), data_definition=definition
    )
    cur = Dataset.from_pandas(
        pd.DataFrame({SCORE: current_scores.astype("float64").values}), data_definition=definition
    )
    metric = ValueDrift(column=SCORE, method=platform_method(), threshold=threshold)
    with platform_scores({SCORE: psi}):
        snapshot = Report([metric]).run(cur, ref)
        built = _save(snapshot, folder, "prediction_drift", "prediction_drift")
    built.metrics["prediction_drift.psi"] = psi
    return built


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
