"""The embedded registry read without MLflow: the same answers as MLflow, and a local copy of
a version trusted only while it matches its promotion record."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from churnops_common.bus.local_bus import LocalBus
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import model_promotions, scoring_forms
from churnops_common.ml.integrity import registered_digest
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_scorer import local_registry, models, scoring_form
from churnops_scorer.local_registry import RECORD_FILE, alias_version
from churnops_scorer.reasons import Attributor

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


def _loaded_twice(
    runtime: Runtime, pipeline: ChurnPipeline
) -> tuple[models.LoadedModel, models.LoadedModel, Path]:
    """(the version loaded from its files, then again from its scoring form, the form's file)."""
    settings = runtime.settings
    upgrade(runtime.engine)
    version = register_champion(settings, pipeline, holdout_pr_auc=0.61)
    _promotion_record(runtime, version)
    first = models._load_registered(settings, version, runtime.engine)
    folder = settings.churnops_home / "cache" / "models" / settings.mlflow_model_name
    form = folder / f"v{version}" / scoring_form.FORM_FILE
    assert form.is_file()
    return first, models._load_registered(settings, version, runtime.engine), form


@pytest.mark.parametrize("family", ["xgb_pipeline", "pipeline"])  # XGBoost, LightGBM
def test_the_scoring_form_serves_the_next_load_and_scores_the_same(
    family: str, scorer_settings: Settings, request: pytest.FixtureRequest
) -> None:
    runtime = Runtime.from_settings(scorer_settings, LocalBus({}))
    first, again, _ = _loaded_twice(runtime, request.getfixturevalue(family))
    assert isinstance(again.pipeline.model, scoring_form.DeferredModel)
    assert again.holdout_pr_auc == 0.61
    chunk = pa.Table.from_pandas(generate(700, seed=9).astype(str), preserve_index=False)
    expected = Attributor(first.pipeline, "path").contributions(chunk)
    found = Attributor(again.pipeline, "path").contributions(chunk)
    np.testing.assert_array_equal(found[0], expected[0])
    np.testing.assert_array_equal(found[1], expected[1])
    # What needs the model itself loads it, from the verified copy, on first use.
    frame = generate(50, seed=10)
    np.testing.assert_array_equal(
        again.pipeline.predict_proba(frame), first.pipeline.predict_proba(frame)
    )


def test_a_scoring_form_is_loaded_only_while_its_record_vouches_for_it(
    xgb_pipeline: ChurnPipeline, scorer_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime.from_settings(scorer_settings, LocalBus({}))
    first, _, form = _loaded_twice(runtime, xgb_pipeline)
    version, name = first.version, first.name

    form.write_bytes(form.read_bytes() + b"\0")  # changed after its record was written
    caplog.set_level("WARNING", logger=scoring_form.__name__)
    reloaded = models._load_registered(scorer_settings, version, runtime.engine)
    assert "does not match its record" in caplog.text
    assert not isinstance(reloaded.pipeline.model, scoring_form.DeferredModel)
    assert form.is_file()  # written again from the verified files, with a new record

    with runtime.engine.begin() as conn:  # a record of a form built from other files
        conn.execute(
            scoring_forms.update()
            .where(scoring_forms.c.model_name == name)
            .values(artifact_sha256="0" * 64)
        )
    reloaded = models._load_registered(scorer_settings, version, runtime.engine)
    assert not isinstance(reloaded.pipeline.model, scoring_form.DeferredModel)
    assert isinstance(
        models._load_registered(scorer_settings, version, runtime.engine).pipeline.model,
        scoring_form.DeferredModel,
    )  # the form written again on that load serves the next

    _set_form_row(runtime, name, code_sha256="0" * 64)  # written by other code
    assert _loads_from_files(scorer_settings, runtime, version)

    garbage = b"not a pickle"  # recorded as it is: vouched for, yet unreadable
    form.write_bytes(garbage)
    _set_form_row(
        runtime, name, form_sha256=hashlib.sha256(garbage).hexdigest(), form_size=len(garbage)
    )
    caplog.clear()
    assert _loads_from_files(scorer_settings, runtime, version)
    assert "not loaded" in caplog.text
    assert form.read_bytes() != garbage  # rebuilt from the verified files


def _set_form_row(runtime: Runtime, name: str, **values: object) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(
            scoring_forms.update().where(scoring_forms.c.model_name == name).values(**values)
        )


def _loads_from_files(settings: Settings, runtime: Runtime, version: str) -> bool:
    loaded = models._load_registered(settings, version, runtime.engine)
    return not isinstance(loaded.pipeline.model, scoring_form.DeferredModel)


LOAD_IN_A_NEW_PROCESS = """
import sys
from churnops_common.bus.local_bus import LocalBus
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_scorer import models
settings = Settings.model_validate_json(sys.argv[1])
engine = Runtime.from_settings(settings, LocalBus({})).engine
loaded = models._load_registered(settings, sys.argv[2], engine)
heavy = {"xgboost", "sklearn", "scipy"} & set(sys.modules)
print(type(loaded.pipeline.model).__name__, *sorted(heavy))
"""


def test_a_command_loading_the_scoring_form_imports_no_model_library(
    xgb_pipeline: ChurnPipeline, scorer_settings: Settings
) -> None:
    runtime = Runtime.from_settings(scorer_settings, LocalBus({}))
    first, _, _ = _loaded_twice(runtime, xgb_pipeline)
    out = subprocess.run(  # this interpreter, a fixed script
        [
            sys.executable,
            "-c",
            LOAD_IN_A_NEW_PROCESS,
            scorer_settings.model_dump_json(),
            first.version,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out == ["DeferredModel"]
