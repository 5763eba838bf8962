"""Handlers of the trainer service: plain functions, event in, follow-up events out.

Every trigger goes through `retrain`: take the training lock, apply the loop guards, assemble
the data, train, gate, and answer ModelPromoted or ModelRejected. A skipped trigger is recorded
in `training_runs` with its reason and publishes nothing.

Idempotent per trigger: the run id is fixed by the task and the trigger's idempotency key, so a
trigger delivered again (its worker died, or publishing its answer failed) finds its run: a
finished one is announced again from the records instead of training another version.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from churnops_common.bus import Handler
from churnops_common.errors import PermanentError
from churnops_common.events import (
    DataValidated,
    Event,
    ObjectRef,
    PerformanceDegraded,
    PsiBreached,
    RetrainRequested,
    TrialsRequested,
)
from churnops_common.runtime import Runtime
from churnops_trainer import distributed, gate, guard, registry
from churnops_trainer.data import NoTrainingData, assemble
from churnops_trainer.outcome import announce, pipeline_key, recorded, training_data_key
from churnops_trainer.service import (
    complete_promotion,
    optuna_storage,
    save_objects,
    train_and_decide,
)
from churnops_trainer.studies import prune_studies

log = logging.getLogger(__name__)

ON_DATA_VALIDATED = "churnops.trainer.on_data_validated"
ON_RETRAIN_REQUESTED = "churnops.trainer.on_retrain_requested"
ON_PSI_BREACHED = "churnops.trainer.on_psi_breached"
ON_PERFORMANCE_DEGRADED = "churnops.trainer.on_performance_degraded"
ON_TRIALS_REQUESTED = "churnops.trainer.on_trials_requested"
# Reasons whose `data` names a table to train on. Drift and performance requests may name the
# batch that raised them: evidence, not a training set (training on it alone would discard the
# training set), so those train on the latest training set plus the labelled batches.
TRAINING_TABLE_REASONS = frozenset({"new_training_data", "manual", "schedule"})


def retrain(
    event: Event,
    runtime: Runtime,
    task_name: str,
    trigger: str,
    training: ObjectRef | None = None,
) -> list[Event]:
    runtime = runtime.under_contract()  # the model's data contract names ids and targets
    settings, engine = runtime.settings, runtime.engine
    name = settings.mlflow_model_name
    run_id = guard.run_id_for(task_name, event)
    earlier = guard.find_run(engine, run_id)
    if earlier is not None:
        answer = _answer_again(event, runtime, earlier, training)
        if answer is not None:
            return answer
    # A new training set waits its turn; other triggers are covered by the training running now.
    with guard.training_lock(engine, settings, wait=trigger == "new_training_data") as held:
        if not held:
            _skip(runtime, run_id, trigger, event, "another training of this model is running")
            return []
        why_not = guard.why_not_retrain(engine, settings, trigger, ignore_run=run_id)
        if why_not:
            _skip(runtime, run_id, trigger, event, why_not)
            return []
        guard.start_run(engine, name, trigger, event.correlation_id, run_id=run_id)
        try:
            data = assemble(runtime, training)
            result = train_and_decide(
                runtime,
                data,
                trigger=trigger,
                correlation_id=event.correlation_id,
                n_trials=settings.optuna_n_trials,
                target=settings.target_column,
                id_column=settings.id_column,
                run_id=run_id,
            )
        except NoTrainingData as exc:
            guard.finish_run(engine, run_id, "skipped", detail=str(exc))
            log.info("trainer: %s skipped: %s", trigger, exc)
            return []
        except ValueError as exc:  # a non-binary target (TargetError), no features...
            guard.finish_run(engine, run_id, "failed", detail=str(exc))
            raise PermanentError(f"cannot train: {exc}") from exc
        except BaseException as exc:
            guard.finish_run(engine, run_id, "failed", detail=f"{type(exc).__name__}: {exc}")
            raise
        guard.finish_done(engine, run_id, result, data.data_objects, data.labelled_rows)
    prune_studies(settings)
    return [announce(event, name, result.version, result.decision, result.training_data)]


def _answer_again(
    event: Event, runtime: Runtime, run: Row[Any], training: ObjectRef | None
) -> list[Event] | None:
    """What a trigger handled before answers now: its skip stands, its finished training is
    announced again (same event id; subscribers that got it drop it), a training that failed
    after its decision was recorded is finished. None: train (again), because the earlier
    attempt died or failed before deciding."""
    if run.status == "skipped":
        log.info("trainer: %s was skipped before (%s): skipped again", event.event_id, run.detail)
        return []
    if run.status != "done" and run.model_version is not None:
        resumed = _finish_decided(event, runtime, run, training)
        if resumed is not None:
            return resumed
    if run.status != "done":
        log.warning(
            "trainer: %s's earlier attempt (run %s) ended %r: training again",
            event.event_id,
            run.run_id,
            run.status,
        )
        return None
    outcome = recorded(event, runtime, run)
    if outcome is None:
        log.warning(
            "trainer: run %s is done but its decision is not recorded: training again", run.run_id
        )
        return None
    log.info(
        "trainer: run %s already decided v%s: announcing it again", run.run_id, run.model_version
    )
    return [outcome]


def _finish_decided(
    event: Event, runtime: Runtime, run: Row[Any], training: ObjectRef | None
) -> list[Event] | None:
    """Finish a promotion whose decision is on record but whose attempt failed (or died)
    before acting on all of it: objects, aliases and tags, then the announcement."""
    settings, engine = runtime.settings, runtime.engine
    name, version = settings.mlflow_model_name, str(run.model_version)
    decision = gate.recorded(engine, name, version)
    if decision is None:
        return None
    log.warning(
        "trainer: run %s decided v%s (%s) but did not finish: finishing it",
        run.run_id,
        version,
        "promote" if decision.promote else "reject",
    )
    with guard.training_lock(engine, settings, wait=True):
        _, data_ref = complete_promotion(
            runtime, version, decision, lambda: _objects_of(runtime, version, training)
        )
        guard.finish_run(engine, run.run_id, "done", model_version=version, detail=decision.reason)
    return [announce(event, name, version, decision, data_ref)]


def _objects_of(
    runtime: Runtime, version: str, training: ObjectRef | None
) -> tuple[ObjectRef, ObjectRef]:
    """The version's pipeline mirror and training table: those already written, else written
    now (the verified registry model; the training data assembled again)."""
    settings, store = runtime.settings, runtime.store
    bucket, name = settings.minio_models_bucket, settings.mlflow_model_name
    keys = (pipeline_key(name, version), training_data_key(name, version))
    found = [store.stat(bucket, key) for key in keys]
    refs = [
        ObjectRef(bucket=bucket, key=info.key, etag=info.etag, size=info.size)
        for info in found
        if info is not None
    ]
    if len(refs) == len(keys):
        return refs[0], refs[1]
    pipeline = registry.load_version(settings, runtime.engine, version)
    return save_objects(runtime, pipeline, assemble(runtime, training), version)


def _skip(runtime: Runtime, run_id: str, trigger: str, event: Event, why: str) -> None:
    log.info("trainer: %s trigger from %s skipped: %s", trigger, event.event_type, why)
    guard.start_run(
        runtime.engine,
        runtime.settings.mlflow_model_name,
        trigger,
        event.correlation_id,
        status="skipped",
        detail=why,
        run_id=run_id,
    )


def on_data_validated(event: Event, runtime: Runtime) -> Sequence[Event]:
    assert isinstance(event, DataValidated)
    if event.kind != "training":
        return []  # new data is the scorer's, labels the monitor's
    return retrain(event, runtime, ON_DATA_VALIDATED, "new_training_data", event.object)


def on_retrain_requested(event: Event, runtime: Runtime) -> Sequence[Event]:
    assert isinstance(event, RetrainRequested)
    training = event.data if event.reason in TRAINING_TABLE_REASONS else None
    if event.data is not None and training is None:
        log.info(
            "trainer: %s retrain names %s; training on the training set and labelled batches",
            event.reason,
            event.data.uri,
        )
    return retrain(event, runtime, ON_RETRAIN_REQUESTED, event.reason, training)


def on_psi_breached(event: Event, runtime: Runtime) -> Sequence[Event]:
    assert isinstance(event, PsiBreached)
    return retrain(event, runtime, ON_PSI_BREACHED, "drift")


def on_performance_degraded(event: Event, runtime: Runtime) -> Sequence[Event]:
    assert isinstance(event, PerformanceDegraded)
    return retrain(event, runtime, ON_PERFORMANCE_DEGRADED, "performance")


def on_trials_requested(event: Event, runtime: Runtime) -> Sequence[Event]:
    """Help a running training's search: pull its trials until the budget is spent."""
    assert isinstance(event, TrialsRequested)
    distributed.help_search(runtime, event, optuna_storage(runtime.settings))
    return []


# task name (from churnops_common.routing) -> handler
HANDLERS: dict[str, Handler] = {
    ON_DATA_VALIDATED: on_data_validated,
    ON_RETRAIN_REQUESTED: on_retrain_requested,
    ON_PSI_BREACHED: on_psi_breached,
    ON_PERFORMANCE_DEGRADED: on_performance_degraded,
    ON_TRIALS_REQUESTED: on_trials_requested,
}
