"""Handlers of the trainer service: plain functions, event in, follow-up events out.

Every trigger goes through `retrain`: take the training lock, apply the loop guards, assemble
the data, train, gate, and answer ModelPromoted or ModelRejected. A skipped trigger is recorded
in `training_runs` with its reason and publishes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from churnops_common.bus import Handler
from churnops_common.errors import PermanentError
from churnops_common.events import (
    DataValidated,
    Event,
    ModelPromoted,
    ModelRejected,
    ObjectRef,
    PerformanceDegraded,
    PsiBreached,
    RetrainRequested,
)
from churnops_common.runtime import Runtime
from churnops_trainer import guard
from churnops_trainer.data import NoTrainingData, assemble
from churnops_trainer.service import TrainingResult, train_and_decide

log = logging.getLogger(__name__)


def retrain(
    event: Event, runtime: Runtime, trigger: str, training: ObjectRef | None = None
) -> list[Event]:
    settings, engine = runtime.settings, runtime.engine
    name = settings.mlflow_model_name
    # A new training set waits its turn; other triggers are covered by the training running now.
    with guard.training_lock(engine, settings, wait=trigger == "new_training_data") as held:
        if not held:
            _skip(runtime, trigger, event, "another training of this model is running")
            return []
        why_not = guard.why_not_retrain(engine, settings, trigger)
        if why_not:
            _skip(runtime, trigger, event, why_not)
            return []
        run_id = guard.start_run(engine, name, trigger, event.correlation_id)
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
        guard.finish_run(
            engine,
            run_id,
            "done",
            training_rows=result.training_rows,
            holdout_rows=result.holdout_rows,
            labelled_rows=data.labelled_rows,
            data_objects=data.data_objects,
            model_version=result.version,
            best_family=result.family,
            holdout_pr_auc=result.holdout.pr_auc,
            detail=result.decision.reason,
        )
    return [_outcome_event(event, runtime, result)]


def _skip(runtime: Runtime, trigger: str, event: Event, why: str) -> None:
    log.info("trainer: %s trigger from %s skipped: %s", trigger, event.event_type, why)
    guard.start_run(
        runtime.engine,
        runtime.settings.mlflow_model_name,
        trigger,
        event.correlation_id,
        status="skipped",
        detail=why,
    )


def _outcome_event(event: Event, runtime: Runtime, result: TrainingResult) -> Event:
    name = runtime.settings.mlflow_model_name
    decision = result.decision
    if decision.promote:
        return event.derive(
            ModelPromoted,
            model_name=name,
            model_version=result.version,
            model_uri=result.model_uri,
            challenger_pr_auc=decision.challenger_pr_auc,
            champion_pr_auc=decision.champion_pr_auc,
            previous_version=decision.champion_version,
            training_data=result.training_data,
        )
    return event.derive(
        ModelRejected,
        model_name=name,
        model_version=result.version,
        challenger_pr_auc=decision.challenger_pr_auc,
        champion_pr_auc=decision.champion_pr_auc,
        reason=decision.reason,
    )


def on_data_validated(event: Event, runtime: Runtime) -> Sequence[Event]:
    assert isinstance(event, DataValidated)
    if event.kind != "training":
        return []  # new data is the scorer's, labels the monitor's
    return retrain(event, runtime, "new_training_data", event.object)


def on_retrain_requested(event: Event, runtime: Runtime) -> Sequence[Event]:
    assert isinstance(event, RetrainRequested)
    return retrain(event, runtime, event.reason, event.data)


def on_psi_breached(event: Event, runtime: Runtime) -> Sequence[Event]:
    assert isinstance(event, PsiBreached)
    return retrain(event, runtime, "drift")


def on_performance_degraded(event: Event, runtime: Runtime) -> Sequence[Event]:
    assert isinstance(event, PerformanceDegraded)
    return retrain(event, runtime, "performance")


# task name (from churnops_common.routing) -> handler
HANDLERS: dict[str, Handler] = {
    "churnops.trainer.on_data_validated": on_data_validated,
    "churnops.trainer.on_retrain_requested": on_retrain_requested,
    "churnops.trainer.on_psi_breached": on_psi_breached,
    "churnops.trainer.on_performance_degraded": on_performance_degraded,
}
