"""The event a training answers with: ModelPromoted or ModelRejected.

Built from a fresh training's result, or rebuilt from the records of a training that already
finished for the same trigger (its `training_runs` row, its `model_promotions` decision and its
training table in the models bucket): a redelivered trigger then announces the same decision
again, under the same derived event id, instead of training and registering another version.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from churnops_common.events import Event, ModelPromoted, ModelRejected, ObjectRef
from churnops_common.runtime import Runtime
from churnops_trainer import gate, registry

# What a training trigger is answered with: the challenger promoted, or rejected.
type TrainingAnswer = ModelPromoted | ModelRejected


def pipeline_key(model_name: str, version: str) -> str:
    """Where a version's .joblib mirror goes in the models bucket."""
    return f"pipelines/{model_name}/v{version}/pipeline.joblib"


def training_data_key(model_name: str, version: str) -> str:
    """Where a version's training table goes in the models bucket."""
    return f"training-data/{model_name}/v{version}/training.parquet"


def announce(
    cause: Event,
    model_name: str,
    version: str,
    decision: gate.Decision,
    training_data: ObjectRef | None,
) -> TrainingAnswer:
    """ModelPromoted or ModelRejected, derived from the trigger (a fixed id per trigger)."""
    if decision.promote:
        return cause.derive(
            ModelPromoted,
            model_name=model_name,
            model_version=version,
            model_uri=registry.version_uri(model_name, version),
            challenger_pr_auc=decision.challenger_pr_auc,
            champion_pr_auc=decision.champion_pr_auc,
            previous_version=decision.champion_version,
            training_data=training_data,
        )
    return cause.derive(
        ModelRejected,
        model_name=model_name,
        model_version=version,
        challenger_pr_auc=decision.challenger_pr_auc,
        champion_pr_auc=decision.champion_pr_auc,
        reason=decision.reason,
    )


def recorded(cause: Event, runtime: Runtime, run: Row[Any]) -> TrainingAnswer | None:
    """The answer of a finished training run, from its records; None when they are incomplete."""
    settings = runtime.settings
    name = settings.mlflow_model_name
    if run.model_version is None:
        return None
    decision = gate.recorded(runtime.engine, name, str(run.model_version))
    if decision is None:
        return None
    training_data = None
    if decision.promote:
        bucket = settings.minio_models_bucket
        key = training_data_key(name, str(run.model_version))
        info = runtime.store.stat(bucket, key)
        if info is not None:
            training_data = ObjectRef(bucket=bucket, key=key, etag=info.etag, size=info.size)
    return announce(cause, name, str(run.model_version), decision, training_data)
