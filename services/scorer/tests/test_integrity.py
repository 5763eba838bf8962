"""A model whose files changed after registration is never unpickled: the batch is parked with
the reason and an IntegrityFailed alert goes to the monitor."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import pytest
import sqlalchemy as sa

from churnops_common.db.tables import dead_letters, scoring_runs
from churnops_common.dispatch import handle_message
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import DataValidated, IntegrityFailed, ObjectRef, to_wire
from churnops_common.ml.integrity import ModelIntegrityError
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.settings import Settings
from churnops_scorer.handlers import on_data_validated
from churnops_scorer.models import load_uri

from .conftest import batch_file, register_champion

TASK = "churnops.scorer.on_data_validated"


class _Marker:
    """Unpickling this creates a file: the proof that a payload ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _model_file(settings: Settings, version: str) -> Path:
    from mlflow import MlflowClient

    from churnops_common.mlflow_setup import configure_mlflow

    configure_mlflow(settings)
    uri = MlflowClient().get_model_version_download_uri(settings.mlflow_model_name, version)
    return Path(urlparse(uri).path) / "model.pkl"


def _validated(platform: EmbeddedPlatform, path: Path) -> DataValidated:
    info = platform.runtime.store.put_file("landing", f"new_data/{path.name}", path)
    ref = ObjectRef(bucket="landing", key=info.key, etag=info.etag, size=info.size)
    return DataValidated.start_chain(
        ref.versioned_uri,
        object=ref,
        kind="new_data",
        quality_run_id="q-1",
        rows=len(pd.read_csv(path)),
    )


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("tamper", ["marker_payload", "one_byte"])
def test_a_changed_model_artifact_is_never_unpickled_and_the_batch_is_parked(
    platform: EmbeddedPlatform,
    pipeline: ChurnPipeline,
    tmp_path: Path,
    tamper: str,
) -> None:
    settings = platform.settings
    version = register_champion(settings, pipeline, 0.5)
    model_file = _model_file(settings, version)
    marker = tmp_path / "payload-ran"
    if tamper == "marker_payload":
        model_file.write_bytes(pickle.dumps(_Marker(marker)))
    else:
        _flip_one_byte(model_file)
    validated = _validated(platform, batch_file(tmp_path, 200, seed=5))

    outcome = handle_message(
        TASK, to_wire(validated), on_data_validated, platform.runtime, final_attempt=False
    )

    assert not marker.exists(), "the tampered pickle was deserialised"
    assert outcome.status == "dead_lettered"
    assert "ModelIntegrityError" in outcome.detail and "sha256" in outcome.detail
    with platform.runtime.engine.connect() as conn:
        (parked,) = conn.execute(sa.select(dead_letters)).all()
        assert conn.execute(sa.select(scoring_runs)).all() == []
    assert parked.task_name == TASK and "differs from the recorded" in parked.error
    (alert,) = platform.events_of("IntegrityFailed")
    assert isinstance(alert, IntegrityFailed)
    assert alert.task_name == TASK and f"models:/{settings.mlflow_model_name}/{version}" in (
        alert.reason
    )
    assert platform.events_of("BatchScored") == []


def test_the_cli_loader_verifies_too_and_refuses_unregistered_uris(
    platform: EmbeddedPlatform, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    settings = platform.settings
    version = register_champion(settings, pipeline, 0.5)
    name = settings.mlflow_model_name
    assert load_uri(settings, f"models:/{name}@champion").version == version
    _flip_one_byte(_model_file(settings, version))
    with pytest.raises(ModelIntegrityError, match="differs from the recorded"):
        load_uri(settings, f"models:/{name}/{version}")
    with pytest.raises(ValueError, match="only registered versions"):
        load_uri(settings, "runs:/abc/model")


def test_a_batch_overwritten_after_validation_is_not_scored(
    platform: EmbeddedPlatform, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    register_champion(platform.settings, pipeline, 0.5)
    validated = _validated(platform, batch_file(tmp_path, 200, seed=5))
    store = platform.runtime.store
    other = batch_file(tmp_path, 150, seed=6, name="other.csv")
    store.put_file(validated.object.bucket, validated.object.key, other)

    outcome = handle_message(
        TASK, to_wire(validated), on_data_validated, platform.runtime, final_attempt=False
    )

    assert outcome.status == "dead_lettered"
    assert "object changed" in outcome.detail and validated.object.etag in outcome.detail
    with platform.runtime.engine.connect() as conn:
        assert conn.execute(sa.select(scoring_runs)).all() == []
    assert list(store.list_objects(platform.settings.minio_predictions_bucket)) == []
    assert platform.events_of("BatchScored") == []
