"""The reference set of a registered model version: its holdout predictions with labels.

The trainer stores, with every version it registers, one Parquet artifact in the version's
MLflow run and names it in the version's `reference_set` tag. Each row is one holdout customer:
the raw values of the model's input columns (and the id column when there is one), the
calibrated churn probability the registered pipeline gives (`churn_probability`) and the
observed outcome (`label`, 0/1). Label-free performance estimates and the expected-profit cut
read it with `load_reference_set`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops_common.mlflow_setup import configure_mlflow
from churnops_common.settings import Settings

REFERENCE_TAG = "reference_set"
ARTIFACT_PATH = "reference"
FILE_NAME = "holdout_predictions.parquet"
PROBABILITY = "churn_probability"
LABEL = "label"


class NoReferenceSet(LookupError):
    """The version has no reference set (registered before they were kept)."""


def reference_frame(
    holdout: pd.DataFrame,
    input_columns: list[str],
    id_column: str | None,
    labels: np.ndarray,
    probability: np.ndarray,
) -> pd.DataFrame:
    """The reference rows: id, input columns (text kept as text), probability, label."""
    keep = [c for c in [id_column, *input_columns] if c and c in holdout.columns]
    frame = holdout[keep].reset_index(drop=True).copy()
    for column in frame.columns:
        if frame[column].dtype == object or isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype("string")  # mixed types would not convert
    frame.columns = [str(c) for c in frame.columns]
    frame[PROBABILITY] = np.asarray(probability, dtype=np.float64)
    frame[LABEL] = np.asarray(labels, dtype=np.int64)
    return frame


def write_reference(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / FILE_NAME
    frame.to_parquet(path, index=False)
    return path


def reference_uri(run_id: str) -> str:
    return f"runs:/{run_id}/{ARTIFACT_PATH}/{FILE_NAME}"


def load_reference_set(settings: Settings, version: str, model_name: str | None = None) -> Any:
    """The reference set (a DataFrame) of one registered version of the configured model."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    name = model_name or settings.mlflow_model_name
    client = MlflowClient(tracking_uri=configure_mlflow(settings))
    uri = (client.get_model_version(name, version).tags or {}).get(REFERENCE_TAG)
    if not uri:
        raise NoReferenceSet(f"{name} v{version} has no {REFERENCE_TAG!r} tag")
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        return pd.read_parquet(path)
