"""The handler path in embedded mode: train, register, gate, publish."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from churnops_common.db.tables import model_promotions, training_runs
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import (
    DataValidated,
    ModelPromoted,
    ModelRejected,
    ObjectRef,
    RetrainRequested,
)
from churnops_common.settings import Settings
from churnops_common.synthetic import generate

Land = Callable[..., ObjectRef]


def _platform(settings: Settings) -> EmbeddedPlatform:
    return EmbeddedPlatform(settings, services={"trainer"})


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _train_first(platform: EmbeddedPlatform, land: Land) -> ModelPromoted:
    ref = land(platform.runtime, generate(1500, seed=1), "training/train-1.csv", "training")
    platform.publish(
        DataValidated.start_chain(
            ref.versioned_uri,
            object=ref,
            kind="training",
            quality_run_id="q1",
            rows=1500,
            has_target=True,
        )
    )
    platform.run()
    promoted = platform.events_of("ModelPromoted")
    assert len(promoted) == 1, platform.bus.published
    event = promoted[0]
    assert isinstance(event, ModelPromoted)
    return event


def test_first_training_without_a_champion_is_promoted(
    trainer_settings: Settings, land_table: Land
) -> None:
    import mlflow
    from mlflow import MlflowClient

    platform = _platform(trainer_settings)
    event = _train_first(platform, land_table)

    assert event.model_version == "1"
    assert event.champion_pr_auc is None and event.previous_version is None
    assert event.training_data is not None
    store = platform.runtime.store
    assert store.exists(event.training_data.bucket, event.training_data.key)
    assert store.exists("models", "pipelines/churn-model/v1/pipeline.joblib")
    with platform.runtime.engine.connect() as conn:
        audit = conn.execute(sa.select(model_promotions)).one()
        run = conn.execute(sa.select(training_runs)).one()
    assert (audit.decision, audit.reason, audit.challenger_version) == (
        "promoted",
        "no champion yet",
        "1",
    )
    assert audit.champion_pr_auc is None and audit.challenger_pr_auc == event.challenger_pr_auc
    assert (run.status, run.trigger, run.model_version) == ("done", "new_training_data", "1")

    client = MlflowClient()
    version = client.get_model_version_by_alias("churn-model", "champion")
    assert str(version.version) == "1"
    assert version.tags["trigger"] == "new_training_data"
    assert version.tags["correlation_id"] == event.correlation_id
    assert "landing/training/train-1.csv@" in version.tags["data_objects"]
    assert int(version.tags["training_rows"]) + int(version.tags["holdout_rows"]) == 1500
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "plots")}
    assert {
        f"plots/{name}.png"
        for name in (
            "feature_importance",
            "contributions",
            "roc",
            "precision_recall",
            "confusion_matrix",
            "cumulative_gains_lift",
            "calibration",
            "optuna_history",
            "optuna_param_importances",
        )
    } <= artifacts
    tables = {a.path for a in client.list_artifacts(version.run_id, "tables")}
    assert {"tables/cumulative_gains.csv", "tables/optuna_param_importances.csv"} <= tables
    run = client.get_run(version.run_id)
    metrics = run.data.metrics
    assert {"holdout_roc_auc", "holdout_pr_auc", "holdout_log_loss", "holdout_brier"} <= set(
        metrics
    )
    # No metric repeats another's figure under a second name.
    values = [round(v, 12) for v in metrics.values()]
    assert len(values) == len(set(values)), sorted(metrics.items(), key=lambda kv: kv[1])
    # One child run per finished Optuna trial, its state and params with it.
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert len(children) == int(run.data.params["n_trials"])
    assert all(c.data.params and "optuna.state" in c.data.tags for c in children)
    pruned = sum(c.data.tags["optuna.state"] == "PRUNED" for c in children)
    assert pruned == int(run.data.params["trials_pruned"])

    # The scorer's view: the registered pipeline loads and explains itself.
    pipeline = mlflow.sklearn.load_model("models:/churn-model@champion")
    batch = generate(50, seed=7).drop(columns=["churned"])
    proba = pipeline.churn_probability(batch)
    assert proba.shape == (50,) and np.all((proba >= 0) & (proba <= 1))
    assert list(pipeline.contributions(batch).columns) == pipeline.input_columns
    assert "customer_id" not in pipeline.input_columns
    assert {"holdout_ece", "uncalibrated_holdout_ece"} <= set(metrics)
    assert float(version.tags["holdout_ece"]) == pytest.approx(metrics["holdout_ece"], abs=1e-6)

    # The version's reference set: holdout rows, their calibrated probability and label.
    from churnops_common.ml.reference import LABEL, PROBABILITY, load_reference_set

    reference = load_reference_set(trainer_settings, "1")
    assert len(reference) == int(version.tags["holdout_rows"])
    assert {"customer_id", *pipeline.input_columns} <= set(reference.columns)
    np.testing.assert_allclose(
        reference[PROBABILITY], pipeline.churn_probability(reference), rtol=0, atol=1e-12
    )
    assert set(reference[LABEL]) == {0, 1}

    # Profit under the campaign's economics (defaults): EMPC, maximum profit and contact rate.
    from empulse.metrics import empc_score

    empc = empc_score(reference[LABEL], reference[PROBABILITY])
    assert metrics["holdout_empc"] == pytest.approx(empc, rel=1e-9)
    assert float(version.tags["holdout_empc"]) == pytest.approx(empc, abs=1e-6)
    assert 0 < metrics["holdout_contact_rate"] <= 1 and "holdout_mp" in metrics
    # One decision: the pipeline's own predict() is the profit cut at the constant CLV.
    assert pipeline.threshold == pytest.approx(11 / 67)


def test_a_worse_challenger_is_not_promoted_and_the_audit_says_why(
    trainer_settings: Settings, land_table: Land
) -> None:
    land = land_table
    platform = _platform(trainer_settings)
    _train_first(platform, land)
    runtime = platform.runtime
    # The new training set's labels are noise; the newest labelled batch is clean and supplies
    # the holdout, so the challenger is judged on real outcomes.
    noisy = generate(1500, seed=2)
    noisy["churned"] = np.random.default_rng(0).permutation(noisy["churned"].to_numpy())
    land(runtime, noisy, "training/train-2-noisy.csv", "training", at=later(1))
    land(runtime, generate(300, seed=3), "new_data/labelled-1.csv", "new_data", at=later(2))
    platform.publish(RetrainRequested.start_chain("manual-1", reason="manual"))
    platform.run()

    rejected = platform.events_of("ModelRejected")
    assert len(rejected) == 1 and not platform.events_of("ModelPromoted")[1:]
    event = rejected[0]
    assert isinstance(event, ModelRejected)
    assert event.champion_pr_auc is not None
    assert (
        event.challenger_pr_auc < event.champion_pr_auc + trainer_settings.pr_auc_shadow_threshold
    )
    with runtime.engine.connect() as conn:
        audit = conn.execute(
            sa.select(model_promotions).where(model_promotions.c.challenger_version == "2")
        ).one()
    assert audit.decision == "rejected"
    assert audit.champion_version == "1"
    assert audit.champion_pr_auc == pytest.approx(event.champion_pr_auc)
    assert "does not beat champion v1" in audit.reason
    from mlflow import MlflowClient

    client = MlflowClient()
    assert str(client.get_model_version_by_alias("churn-model", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("churn-model", "challenger").version) == "2"


def test_a_bad_training_set_is_dead_lettered_and_a_premature_drift_trigger_skipped(
    trainer_settings: Settings, land_table: Land
) -> None:
    from churnops_common.db.tables import dead_letters
    from churnops_common.events import PsiBreached

    platform = _platform(trainer_settings)
    bad = generate(300, seed=1).assign(churned="maybe")
    ref = land_table(platform.runtime, bad, "training/bad.csv", "training")
    platform.publish(
        DataValidated.start_chain(
            ref.versioned_uri,
            object=ref,
            kind="training",
            quality_run_id="q",
            rows=300,
            has_target=True,
        )
    )
    platform.publish(
        PsiBreached.start_chain(
            "psi-1",
            object=ref,
            quality_run_id="q",
            features={"age": 0.5},
            max_psi=0.5,
            threshold=0.2,
        )
    )
    platform.run()

    assert not platform.events_of("ModelPromoted") and not platform.events_of("ModelRejected")
    with platform.runtime.engine.connect() as conn:
        parked = conn.execute(sa.select(dead_letters)).one()
        runs = conn.execute(
            sa.select(training_runs.c.trigger, training_runs.c.status, training_runs.c.detail)
        ).all()
    assert (
        "target column 'churned': 300 row(s) hold values outside the target vocabulary"
        in parked.error
    )
    assert {(r.trigger, r.status) for r in runs} == {
        ("new_training_data", "failed"),
        ("drift", "skipped"),
    }
    skipped = next(r for r in runs if r.status == "skipped")
    assert "new labelled row" in skipped.detail
