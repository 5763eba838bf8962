"""MLflow: the training run (params, metrics, figures), the registered version and its aliases.

Aliases only (`champion`, `challenger`); registry stages are deprecated. The champion is always
loaded by its version number, so a promotion racing with a load cannot mix two versions.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from churnops_common.errors import PermanentError
from churnops_common.ml.integrity import (
    ArtifactDigest,
    expected_digest,
    load_verified,
    promoted_digest,
    record_digest,
)
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.ml.reference import (
    ARTIFACT_PATH,
    REFERENCE_TAG,
    reference_uri,
    write_reference,
)
from churnops_common.mlflow_setup import configure_mlflow
from churnops_common.settings import Settings

log = logging.getLogger(__name__)
EXPERIMENT = "churnops-training"
CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class Champion:
    version: str
    pipeline: ChurnPipeline


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    configure_mlflow(settings)
    return MlflowClient()


def pip_requirements() -> list[str]:
    """The libraries a ChurnPipeline needs to load and predict, pinned to this environment."""
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for package in (
        "churnops-common",
        "lightgbm",
        "xgboost-cpu",
        "scikit-learn",
        "pandas",
        "numpy",
        "cloudpickle",
    ):
        try:
            pinned.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pinned


def _experiment_id(settings: Settings) -> str:
    """The training experiment; embedded mode keeps its artifacts under CHURNOPS_HOME."""
    from churnops_common.mlflow_setup import ensure_experiment

    return ensure_experiment(settings, EXPERIMENT)


def load_champion(settings: Settings, engine: Engine) -> Champion | None:
    """The current champion, or None when no version holds the alias yet; its files are
    verified against the digest recorded at its registration before they are unpickled."""
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    try:
        version = client.get_model_version_by_alias(settings.mlflow_model_name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise
    number = str(version.version)
    return Champion(number, load_version(settings, engine, number))


def load_version(settings: Settings, engine: Engine, version: str) -> ChurnPipeline:
    """One registered version, verified against its recorded digest before it is unpickled."""
    name = settings.mlflow_model_name
    expected = expected_digest(settings, name, version, promoted_digest(engine, name, version))
    pipeline = load_verified(settings, name, version, expected)
    if not isinstance(pipeline, ChurnPipeline):
        raise PermanentError(f"models:/{name}/{version} is a {type(pipeline).__name__}")
    return pipeline


def signature_of(pipeline: ChurnPipeline, example: pd.DataFrame) -> Any:
    """Explicit signature: one optional column per input column, typed as the raw data is."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    specs: list[ColSpec | TensorSpec] = []
    for column in pipeline.input_columns:
        series = example[column]
        if pd.api.types.is_bool_dtype(series):
            kind = "boolean"
        elif pd.api.types.is_numeric_dtype(series):
            kind = "double"
        else:
            kind = "string"
        specs.append(ColSpec(kind, column, required=False))
    return ModelSignature(inputs=Schema(specs), outputs=Schema([ColSpec("long")]))


def input_example(pipeline: ChurnPipeline, frame: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """A few raw rows; never a pandas `category` column (it breaks MLflow's schema inference)."""
    example = frame[pipeline.input_columns].head(rows * 20)
    complete = example.dropna()
    example = (complete if len(complete) >= rows else example).head(rows).copy()
    for column in example.columns:
        series = example[column]
        if isinstance(series.dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        ):
            example[column] = (
                series.astype(object)
                .where(series.notna(), None)
                .map(lambda v: None if v is None else str(v))
            )
        elif pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            example[column] = series.astype("float64")
    return example.reset_index(drop=True)


@dataclass(frozen=True)
class LoggedVersion:
    version: str
    run_id: str
    model_uri: str
    digest: ArtifactDigest


def log_training(
    settings: Settings,
    pipeline: ChurnPipeline,
    raw_train: pd.DataFrame,
    params: dict[str, Any],
    metrics: dict[str, float],
    figures: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    tags: dict[str, str],
    reference: pd.DataFrame | None = None,
    trials: list[Any] | None = None,
) -> LoggedVersion:
    """One MLflow run with everything, and a registered model version tagged with `tags`;
    `reference` (the holdout predictions) is stored in the run and named by a version tag;
    each Optuna trial becomes a child run of it."""
    import mlflow

    example = input_example(pipeline, raw_train)
    # No process-wide active experiment: embedded mode runs every service in one process.
    run_name = f"train-{tags.get('trigger', 'manual')}"
    with mlflow.start_run(experiment_id=_experiment_id(settings), run_name=run_name) as run:
        mlflow.set_tags(tags)
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"plots/{name}.png")
        log_trials(_client(settings), run.info.experiment_id, run.info.run_id, trials or [])
        with tempfile.TemporaryDirectory() as tmp:
            for name, table in tables.items():
                path = Path(tmp) / f"{name}.csv"
                table.to_csv(path)
                mlflow.log_artifact(str(path), "tables")
            if reference is not None:
                mlflow.log_artifact(str(write_reference(reference, Path(tmp))), ARTIFACT_PATH)
        with _registration_notes():
            info = _log_model(settings, pipeline, example)
    version = str(info.registered_model_version)
    client = _client(settings)
    if reference is not None:
        tags = {**tags, REFERENCE_TAG: reference_uri(run.info.run_id)}
    for key, value in tags.items():
        client.set_model_version_tag(settings.mlflow_model_name, version, key, value)
    digest = record_digest(settings, settings.mlflow_model_name, version)
    return LoggedVersion(
        version, run.info.run_id, version_uri(settings.mlflow_model_name, version), digest
    )


def _log_model(settings: Settings, pipeline: ChurnPipeline, example: pd.DataFrame) -> Any:
    import mlflow.sklearn

    return mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=signature_of(pipeline, example),
        input_example=example,
        registered_model_name=settings.mlflow_model_name,
        # skops cannot vouch for LightGBM/XGBoost objects; loading is gated by
        # MLFLOW_ALLOW_PICKLE_DESERIALIZATION either way (see churnops_common.ml.integrity).
        serialization_format="cloudpickle",
        # Explicit: MLflow would otherwise infer them by reloading the model in a
        # subprocess, which costs seconds per training.
        pip_requirements=pip_requirements(),
    )


@contextmanager
def _registration_notes() -> Iterator[None]:
    """MLflow prints "Registered model ... Creating a new version" to stderr on every
    registration, past its logger: into this log (at INFO) instead of a user's terminal."""
    notes = io.StringIO()
    try:
        with contextlib.redirect_stderr(notes):
            yield
    finally:
        for line in notes.getvalue().splitlines():
            if line.strip():
                log.info("mlflow: %s", line.strip())


TRIAL_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def log_trials(client: Any, experiment_id: str, parent_run_id: str, trials: list[Any]) -> None:
    """One child run per finished Optuna trial (params, validation PR-AUC, state), logged once
    the search is over: trials that ran in other processes or on other machines are in the
    study's storage, not in this process's MLflow context."""
    from mlflow.entities import Metric, Param, RunTag

    for trial in trials:
        status = TRIAL_STATUS.get(trial.state.name)
        if status is None:  # still running or waiting: not part of this search's result
            continue
        start = _millis(trial.datetime_start)
        child = client.create_run(
            experiment_id,
            start_time=start,
            run_name=f"trial-{trial.number}",
            tags={"mlflow.parentRunId": parent_run_id, "optuna.state": trial.state.name},
        )
        metrics = []
        if trial.value is not None and trial.state.name == "COMPLETE":
            metrics.append(Metric("validation_pr_auc", float(trial.value), start or 0, 0))
        params = [Param(str(k), str(v)[:6000]) for k, v in trial.params.items()]
        client.log_batch(
            child.info.run_id,
            metrics=metrics,
            params=params,
            tags=[RunTag("optuna.trial_number", str(trial.number))],
        )
        client.set_terminated(child.info.run_id, status, end_time=_millis(trial.datetime_complete))


def _millis(moment: Any) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def version_uri(model_name: str, version: str) -> str:
    """The registry URI of one version (what ModelPromoted.model_uri carries)."""
    return f"models:/{model_name}/{version}"


def _param(value: Any) -> str | float | int:
    if isinstance(value, float | int):
        return value
    return json.dumps(value) if isinstance(value, list | dict | tuple) else str(value)


def set_alias(settings: Settings, alias: str, version: str) -> None:
    _client(settings).set_registered_model_alias(settings.mlflow_model_name, alias, version)


def tag_version(settings: Settings, version: str, tags: dict[str, str]) -> None:
    client = _client(settings)
    for key, value in tags.items():
        client.set_model_version_tag(settings.mlflow_model_name, version, key, value)
