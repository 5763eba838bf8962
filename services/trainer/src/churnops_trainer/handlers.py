"""Handlers of the trainer service: plain functions, event in, follow-up events out.

Every trigger is answered by one use case, `retrain.retrain` (lock, guards, data, training,
gate, announcement), under the task's own name, which fixes the trigger's run id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from churnops_common.events import (
    DataValidated,
    Event,
    PerformanceDegraded,
    PsiBreached,
    RetrainRequested,
    TrialsRequested,
)
from churnops_common.handling import expect, handlers_of
from churnops_common.routing import TRAINER, task_name
from churnops_common.runtime import Runtime
from churnops_trainer import distributed
from churnops_trainer.outcome import TrainingAnswer
from churnops_trainer.retrain import retrain
from churnops_trainer.train_model import optuna_storage

log = logging.getLogger(__name__)

# A trigger's run id is fixed by its task name (and its idempotency key).
ON_DATA_VALIDATED = task_name(TRAINER, DataValidated)
ON_RETRAIN_REQUESTED = task_name(TRAINER, RetrainRequested)
ON_PSI_BREACHED = task_name(TRAINER, PsiBreached)
ON_PERFORMANCE_DEGRADED = task_name(TRAINER, PerformanceDegraded)
# Reasons whose `data` names a table to train on. Drift and performance requests may name the
# batch that raised them: evidence, not a training set (training on it alone would discard the
# training set), so those train on the latest training set plus the labelled batches.
TRAINING_TABLE_REASONS = frozenset({"new_training_data", "manual", "schedule"})


def on_data_validated(event: Event, runtime: Runtime) -> Sequence[TrainingAnswer]:
    event = expect(event, DataValidated)
    if event.kind != "training":
        return []  # new data is the scorer's, labels the monitor's
    return retrain(event, runtime, ON_DATA_VALIDATED, "new_training_data", event.object)


def on_retrain_requested(event: Event, runtime: Runtime) -> Sequence[TrainingAnswer]:
    event = expect(event, RetrainRequested)
    training = event.data if event.reason in TRAINING_TABLE_REASONS else None
    if event.data is not None and training is None:
        log.info(
            "trainer: %s retrain names %s; training on the training set and labelled batches",
            event.reason,
            event.data.uri,
        )
    return retrain(event, runtime, ON_RETRAIN_REQUESTED, event.reason, training)


def on_psi_breached(event: Event, runtime: Runtime) -> Sequence[TrainingAnswer]:
    event = expect(event, PsiBreached)
    return retrain(event, runtime, ON_PSI_BREACHED, "drift")


def on_performance_degraded(event: Event, runtime: Runtime) -> Sequence[TrainingAnswer]:
    event = expect(event, PerformanceDegraded)
    return retrain(event, runtime, ON_PERFORMANCE_DEGRADED, "performance")


def on_trials_requested(event: Event, runtime: Runtime) -> Sequence[Event]:
    """Help a running training's search: pull its trials until the budget is spent."""
    event = expect(event, TrialsRequested)
    distributed.help_search(runtime, event, optuna_storage(runtime.settings))
    return []


HANDLERS = handlers_of(
    TRAINER,
    {
        DataValidated: on_data_validated,
        RetrainRequested: on_retrain_requested,
        PsiBreached: on_psi_breached,
        PerformanceDegraded: on_performance_degraded,
        TrialsRequested: on_trials_requested,
    },
)
