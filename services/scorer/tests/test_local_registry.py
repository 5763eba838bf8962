"""The embedded registry read without MLflow: the same answers as MLflow, and a local copy of
a version trusted only while it matches its promotion record."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mlflow import MlflowClient

from churnops_common.bus.local_bus import LocalBus
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import model_promotions
from churnops_common.ml.integrity import registered_digest
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_scorer import local_registry, models
from churnops_scorer.local_registry import RECORD_FILE, alias_version

from .conftest import register_champion


def _promotion_record(runtime: Runtime, version: str) -> None:
    """The row the gate writes when it promotes a version, with the version's digest."""
    settings = runtime.settings
    digest = registered_digest(settings, settings.mlflow_model_name, version)
    assert digest is not None
    with runtime.engine.begin() as conn:
        conn.execute(
            model_promotions.insert().values(
                model_name=settings.mlflow_model_name,
                challenger_version=version,
                challenger_pr_auc=0.5,
                decision="promoted",
                reason="test",
                correlation_id="test",
                decided_at=datetime.now(UTC),
                artifact_sha256=digest.sha256,
                artifact_size=digest.size,
            )
        )


def test_the_alias_read_from_the_file_is_mlflows_answer(
    pipeline: ChurnPipeline, scorer_settings: Settings
) -> None:
    first = register_champion(scorer_settings, pipeline)
    assert alias_version(scorer_settings, "champion") == (True, first)
    second = register_champion(scorer_settings, pipeline)
    client = MlflowClient(tracking_uri=scorer_settings.mlflow_uri())
    expected = client.get_model_version_by_alias(scorer_settings.mlflow_model_name, "champion")
    assert (
        alias_version(scorer_settings, "champion")
        == (True, str(expected.version))
        == (
            True,
            second,
        )
    )
    client.delete_registered_model_alias(scorer_settings.mlflow_model_name, "champion")
    assert alias_version(scorer_settings, "champion") == (True, None)
    assert models.champion_version(scorer_settings) is None


def test_stack_mode_and_other_registries_ask_mlflow(scorer_settings: Settings) -> None:
    served = scorer_settings.model_copy(update={"mlflow_tracking_uri": "http://mlflow:5000"})
    assert alias_version(served, "champion") == (False, None)


def test_a_verified_copy_serves_the_next_load_until_it_is_tampered_with(
    pipeline: ChurnPipeline,
    scorer_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = Runtime.from_settings(scorer_settings, LocalBus({}))
    upgrade(runtime.engine)
    version = register_champion(scorer_settings, pipeline, holdout_pr_auc=0.61)
    _promotion_record(runtime, version)
    name = scorer_settings.mlflow_model_name

    first = models._load_registered(scorer_settings, version, runtime.engine)
    folder = scorer_settings.churnops_home / "cache" / "models" / name / f"v{version}"
    assert (folder / RECORD_FILE).is_file() and first.holdout_pr_auc == 0.61

    caplog.set_level("INFO", logger=models.__name__)
    again = models._load_registered(scorer_settings, version, runtime.engine)
    assert "from its verified local copy" in caplog.text
    assert again.holdout_pr_auc == 0.61
    assert again.pipeline.metadata == first.pipeline.metadata

    (folder / "files" / "MLmodel").write_text("flavors: {}\n")  # tampered: not the record's
    caplog.clear()
    caplog.set_level("WARNING", logger=local_registry.__name__)
    reloaded = models._load_registered(scorer_settings, version, runtime.engine)
    assert "differs from its record" in caplog.text
    assert isinstance(reloaded.pipeline, ChurnPipeline)
    assert (folder / RECORD_FILE).is_file()  # re-copied from the verified download


def test_without_a_promotion_record_nothing_is_served_from_the_copy(
    pipeline: ChurnPipeline, scorer_settings: Settings
) -> None:
    version = register_champion(scorer_settings, pipeline)
    models._load_registered(scorer_settings, version, None)
    name = scorer_settings.mlflow_model_name
    assert local_registry.load_cached(scorer_settings, name, version, None) is None
