"""Fixtures for the monitor's tests: an embedded platform with only the monitor installed, and
scored batches written the way the scorer writes them (the predictions file contract)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops_common.db.tables import scoring_runs
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import BatchScored, ObjectRef
from churnops_common.settings import Settings
from churnops_common.synthetic import generate


def fake_scores(frame: pd.DataFrame, seed: int, skill: float = 1.0) -> np.ndarray:
    """Churn probabilities a plausible model would give: `skill` 0 is noise, 1 is good."""
    rng = np.random.default_rng(seed)
    logit = (
        1.2 * (frame["contract"] == "month-to-month").to_numpy()
        - 0.9 * (frame["contract"] == "two-year").to_numpy()
        - 0.035 * frame["tenure_months"].to_numpy()
        + 0.012 * (frame["monthly_charges"].to_numpy() - 65)
        + 0.25 * frame["support_calls"].to_numpy()
        + 0.45 * (frame["payment_method"] == "electronic-check").to_numpy()
        - 0.45 * (frame["satisfaction_score"].fillna(3).to_numpy() - 3)
        - 1.0
    )
    noise = rng.normal(0, 1.0, len(frame))
    return np.asarray(1 / (1 + np.exp(-(skill * logit + (1 - skill) * 2 * noise))))


@dataclass
class ScoredBatch:
    inputs: pd.DataFrame
    predictions: pd.DataFrame
    input_ref: ObjectRef
    predictions_ref: ObjectRef
    run_id: str
    model_version: str

    def batch_scored(self, has_target: bool) -> BatchScored:
        return BatchScored.start_chain(
            f"scored:{self.run_id}",
            input=self.input_ref,
            predictions=self.predictions_ref,
            scoring_run_id=self.run_id,
            model_name="churn-model",
            model_version=self.model_version,
            rows=len(self.predictions),
            has_target=has_target,
        )


def write_scored_batch(
    platform: EmbeddedPlatform,
    tmp: Path,
    *,
    name: str,
    rows: int,
    seed: int,
    model_version: str = "1",
    drift: float = 0.0,
    with_target: bool = False,
    skill: float = 1.0,
    created_at: datetime | None = None,
    inputs: pd.DataFrame | None = None,
) -> ScoredBatch:
    """Land an input file, write its predictions per the contract and record the scoring run."""
    settings, store = platform.settings, platform.runtime.store
    frame = inputs if inputs is not None else generate(rows, seed=seed, drift=drift)
    landed = frame if with_target else frame.drop(columns=["churned"])
    path = tmp / f"{name}-{model_version}.csv"
    landed.to_csv(path, index=False)
    info = store.put_file(settings.minio_landing_bucket, f"new_data/{name}.csv", path)
    input_ref = ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)
    scores = fake_scores(frame, seed, skill)
    preds = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str),
            "churn_probability": scores,
            "risk_band": np.select([scores >= 0.6, scores >= 0.3], ["high", "medium"], "low"),
            "model_name": "churn-model",
            "model_version": model_version,
            "reason_1": "tenure_months",
            "reason_2": "monthly_charges",
            "reason_3": "contract",
            "reason_1_contribution": 0.5,
            "reason_2_contribution": 0.3,
            "reason_3_contribution": 0.1,
            "input_object": input_ref.uri,
            "input_etag": input_ref.etag,
        }
    )
    if with_target:
        preds["churned"] = frame["churned"].to_numpy()
    key = f"new_data/{name}/{info.etag[:12]}/v{model_version}/predictions.parquet"
    ppath = tmp / f"{name}-{model_version}.parquet"
    preds.to_parquet(ppath, index=False)
    pinfo = store.put_file(settings.minio_predictions_bucket, key, ppath)
    run_id = f"run-{name}-v{model_version}"
    row: dict[str, Any] = {
        "run_id": run_id,
        "input_bucket": info.bucket,
        "input_key": info.key,
        "input_etag": info.etag,
        "predictions_uri": pinfo.uri,
        "model_name": "churn-model",
        "model_version": model_version,
        "rows": len(preds),
        "duration_s": 0.1,
        "score_mean": float(scores.mean()),
        "correlation_id": run_id,
        "created_at": created_at or datetime.now(UTC),
    }
    with platform.runtime.engine.begin() as conn:
        conn.execute(scoring_runs.insert().values(**row))
    return ScoredBatch(
        frame,
        preds,
        input_ref,
        ObjectRef(bucket=pinfo.bucket, key=pinfo.key, etag=pinfo.etag),
        run_id,
        model_version,
    )


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the session: creating a SQLite tracking store takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch: pytest.MonkeyPatch, mlflow_uri: str, tmp_path: Path) -> None:
    """Pin MLFLOW_TRACKING_URI for each test. mlflow.set_tracking_uri() exports that variable
    and Settings reads it, so without this one test's store would leak into the next."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", str(tmp_path / "mlruns"))


@pytest.fixture
def make_platform(tmp_path: Path) -> Callable[..., EmbeddedPlatform]:
    """An embedded platform with only the monitor's handlers, settings overridable."""

    def make(**overrides: Any) -> EmbeddedPlatform:
        settings = Settings(
            churnops_mode="embedded", churnops_home=tmp_path / "home", _env_file=None, **overrides
        )  # type: ignore[call-arg]
        return EmbeddedPlatform(settings, services={"monitor"})

    return make


@pytest.fixture
def scored_batch() -> Callable[..., ScoredBatch]:
    """`write_scored_batch` as a fixture (test modules do not import each other)."""
    return write_scored_batch


@pytest.fixture
def scores_of() -> Callable[..., np.ndarray]:
    """`fake_scores` as a fixture: a reference set scored the way the batches are."""
    return fake_scores
