"""A training that fails after its search (MLflow away while logging) resumes from its stored
Optuna study when the trigger is delivered again: the search is not run a second time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
import pytest

from churnops_common.dispatch import handle_message
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import DataValidated, ModelPromoted, ObjectRef, to_wire
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_trainer import registry
from churnops_trainer.handlers import ON_DATA_VALIDATED, on_data_validated

Land = Callable[..., ObjectRef]


def test_a_redelivery_after_an_mlflow_outage_does_not_search_again(
    trainer_settings: Settings, land_table: Land, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = f"sqlite:///{trainer_settings.churnops_home / 'optuna.db'}"
    settings = trainer_settings.model_copy(update={"optuna_storage_url": storage})
    platform = EmbeddedPlatform(settings, services={"trainer"})
    runtime = platform.runtime
    ref = land_table(runtime, generate(1000, seed=1), "training/t.csv", "training")
    validated = DataValidated.start_chain(
        ref.versioned_uri, object=ref, kind="training", quality_run_id="q", rows=1000
    )
    real_log = registry.log_training
    calls = {"n": 0}

    def mlflow_down_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("injected: MLflow unreachable")
        return real_log(*args, **kwargs)

    monkeypatch.setattr(registry, "log_training", mlflow_down_once)
    with pytest.raises(ConnectionError, match="injected"):
        handle_message(
            ON_DATA_VALIDATED, to_wire(validated), on_data_validated, runtime, final_attempt=False
        )
    (study,) = optuna.get_all_study_summaries(storage)
    searched = [
        t.datetime_complete
        for t in optuna.load_study(study_name=study.study_name, storage=storage).trials
    ]
    assert len(searched) == settings.optuna_n_trials

    retry = handle_message(
        ON_DATA_VALIDATED, to_wire(validated), on_data_validated, runtime, final_attempt=False
    )

    assert retry.status == "done"
    assert [e for e in platform.bus.published if isinstance(e, ModelPromoted)]
    again = optuna.load_study(study_name=study.study_name, storage=storage).trials
    assert [t.datetime_complete for t in again] == searched  # no trial added by the retry
    assert len(optuna.get_all_study_summaries(storage)) == 1


def test_old_studies_are_pruned_after_their_retention(trainer_settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    from churnops_trainer.studies import prune_studies

    storage = f"sqlite:///{trainer_settings.churnops_home / 'optuna.db'}"
    settings = trainer_settings.model_copy(
        update={"optuna_storage_url": storage, "retention_studies_days": 30}
    )
    study = optuna.create_study(storage=storage, study_name="old-one")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert prune_studies(settings) == 0  # started today: kept
    assert prune_studies(settings, now=datetime.now(UTC) + timedelta(days=31)) == 1
    assert optuna.get_all_study_summaries(storage) == []
