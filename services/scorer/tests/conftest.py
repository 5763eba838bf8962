"""Fixtures for the scorer's tests: small real ChurnPipelines (fitted here, no trainer code) and a
local MLflow registry (SQLite under the test's tmp dir) where they become the champion."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import pandas as pd
import pytest
import xgboost as xgb

from churnops_common.embedded import EmbeddedPlatform
from churnops_common.ml.integrity import record_digest
from churnops_common.ml.pipeline import ChurnPipeline, TabularPreprocessor
from churnops_common.mlflow_setup import configure_mlflow
from churnops_common.settings import Settings
from churnops_common.synthetic import generate

ID, TARGET = "customer_id", "churned"


def fit_pipeline(seed: int, family: str = "lightgbm", rows: int = 1500) -> ChurnPipeline:
    train = generate(rows, seed=seed)
    pre = TabularPreprocessor.fit(train, exclude=(ID, TARGET))
    features = pre.transform(train)
    model: lgb.LGBMClassifier | xgb.XGBClassifier
    if family == "lightgbm":
        model = lgb.LGBMClassifier(
            n_estimators=25,
            num_leaves=15,
            learning_rate=0.1,
            verbose=-1,
            random_state=seed,
            n_jobs=1,
        )
    else:
        model = xgb.XGBClassifier(
            n_estimators=25,
            max_depth=4,
            learning_rate=0.1,
            enable_categorical=True,
            tree_method="hist",
            n_jobs=1,
        )
    model.fit(features, train[TARGET])
    return ChurnPipeline(pre, model, family, id_column=ID, target_column=TARGET)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pipeline() -> ChurnPipeline:
    return fit_pipeline(seed=1)


@pytest.fixture(scope="session")
def pipeline_v2() -> ChurnPipeline:
    return fit_pipeline(seed=2, rows=1200)


@pytest.fixture(scope="session")
def xgb_pipeline() -> ChurnPipeline:
    return fit_pipeline(seed=3, family="xgboost")


Register = Callable[[ChurnPipeline, float | None], str]


def register_champion(
    settings: Settings, pipeline: ChurnPipeline, holdout_pr_auc: float | None = None
) -> str:
    """Log and register the pipeline as the trainer would, and point the champion alias at it."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    configure_mlflow(settings)
    with mlflow.start_run():
        if holdout_pr_auc is not None:
            mlflow.log_metric("holdout_pr_auc", holdout_pr_auc)
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            registered_model_name=settings.mlflow_model_name,
            serialization_format="cloudpickle",
            pip_requirements=["lightgbm", "xgboost-cpu"],
        )
    version = str(info.registered_model_version)
    record_digest(settings, settings.mlflow_model_name, version)
    MlflowClient().set_registered_model_alias(settings.mlflow_model_name, "champion", version)
    return version


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One registry for the session (creating MLflow's tables costs seconds); each test
    registers under its own model name."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def scorer_settings(tmp_path: Path, mlflow_uri: str) -> Settings:
    return Settings(
        churnops_mode="embedded",
        churnops_home=tmp_path / "home",
        mlflow_tracking_uri=mlflow_uri,
        mlflow_model_name=f"churn-{uuid.uuid4().hex[:8]}",
        retention_top_k=50,
        _env_file=None,
    )  # type: ignore[call-arg]


@pytest.fixture
def platform(scorer_settings: Settings) -> EmbeddedPlatform:
    """Only the scorer installed: events it publishes are recorded, not handled elsewhere."""
    return EmbeddedPlatform(scorer_settings, services={"scorer"})


def batch_file(
    folder: Path,
    rows: int,
    seed: int,
    *,
    target: bool = False,
    drift: float = 0.0,
    name: str | None = None,
) -> Path:
    frame: pd.DataFrame = generate(rows, seed=seed, drift=drift)
    if not target:
        frame = frame.drop(columns=[TARGET])
    path = folder / (name or f"batch-{seed}.csv")
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path
