"""Trainer test helpers: small, fast settings and a way to land data as quality would."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from churnops_common.db.tables import quality_runs
from churnops_common.events import ObjectRef
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings


@pytest.fixture(autouse=True)
def _fresh_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`mlflow.set_tracking_uri` exports MLFLOW_TRACKING_URI, which Settings then reads: without
    this, the next test would talk to the previous test's registry."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unset")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    yield
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow SQLite store: creating one costs ~10 s, copying it none."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}")
    client.search_experiments()
    client.search_registered_models()
    return path


def fresh_mlflow_store(template: Path, dest: Path) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, dest)
    return f"sqlite:///{dest}"


@pytest.fixture
def trainer_settings(embedded_settings: Settings, mlflow_template: Path) -> Settings:
    """Embedded settings with few trials (a training takes seconds) and a fresh MLflow store."""
    fresh_mlflow_store(mlflow_template, embedded_settings.churnops_home / "mlflow.db")
    return embedded_settings.model_copy(
        update={
            "optuna_n_trials": 3,
            "trainer_n_jobs": 1,
            "retrain_min_new_labelled_rows": 100,
        }
    )


def land(
    runtime: Runtime,
    frame: pd.DataFrame,
    key: str,
    kind: str,
    at: datetime | None = None,
    tmp: Path | None = None,
) -> ObjectRef:
    """Put a table into landing/ and record quality's acceptance of it (as quality does)."""
    settings = runtime.settings
    runtime.store.ensure_buckets(settings.buckets)
    folder = tmp or settings.churnops_home
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"upload-{uuid.uuid4().hex}.csv"
    frame.to_csv(path, index=False)
    info = runtime.store.put_file(settings.minio_landing_bucket, key, path, "text/csv")
    path.unlink()
    with runtime.engine.begin() as conn:
        conn.execute(
            quality_runs.insert().values(
                run_id=str(uuid.uuid4()),
                bucket=info.bucket,
                object_key=info.key,
                etag=info.etag,
                kind=kind,
                status="accepted",
                rows=len(frame),
                has_target=settings.target_column in frame.columns,
                warnings=[],
                details={},
                correlation_id=str(uuid.uuid4()),
                created_at=at or datetime.now(UTC),
            )
        )
    return ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)


def later(seconds: float = 1.0) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.fixture
def land_table():  # type: ignore[no-untyped-def]
    """`land` as a fixture (test modules cannot import conftest under importlib mode)."""
    return land
