"""Triggers delivered again, and what a retrain trains on.

A trigger redelivered after its answer failed to publish (or after its worker died) must not
train and register a second version: it finds its own run (the run id is fixed by the trigger)
and announces the recorded decision again, under the same event id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from churnops_common.db.tables import model_promotions, training_runs
from churnops_common.dispatch import handle_message
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import (
    DataValidated,
    Event,
    ModelPromoted,
    ObjectRef,
    PsiBreached,
    RetrainRequested,
    to_wire,
)
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_trainer import records
from churnops_trainer.handlers import (
    ON_DATA_VALIDATED,
    ON_PSI_BREACHED,
    ON_RETRAIN_REQUESTED,
    on_data_validated,
    on_psi_breached,
    on_retrain_requested,
)

Land = Callable[..., ObjectRef]


class BrokerDown:
    """A bus whose broker is unreachable: what a publish failure after the handler looks like."""

    def __init__(self) -> None:
        self.lost: list[Event] = []

    def publish(self, event: Event) -> None:
        self.lost.append(event)
        raise ConnectionError("broker unreachable")


def _platform(settings: Settings) -> EmbeddedPlatform:
    return EmbeddedPlatform(settings, services={"trainer"})


def _later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _runs(platform: EmbeddedPlatform) -> list[sa.Row]:  # type: ignore[type-arg]
    with platform.runtime.engine.connect() as conn:
        return list(conn.execute(sa.select(training_runs)))


def _versions(settings: Settings) -> list[str]:
    from mlflow import MlflowClient

    from churnops_common.mlflow_setup import configure_mlflow

    configure_mlflow(settings)
    found = MlflowClient().search_model_versions(f"name='{settings.mlflow_model_name}'")
    return sorted(str(v.version) for v in found)


def _same(a: Event, b: Event) -> bool:
    return a.model_dump(exclude={"occurred_at"}) == b.model_dump(exclude={"occurred_at"})


@pytest.mark.parametrize(
    ("reason", "trains_on"),
    [("performance", ["training", "batch"]), ("manual", ["batch"])],
)
def test_only_training_reasons_train_on_the_named_table(
    trainer_settings: Settings, land_table: Land, reason: str, trains_on: list[str]
) -> None:
    platform = _platform(trainer_settings)
    runtime = platform.runtime
    refs = {
        "training": land_table(runtime, generate(1000, seed=1), "training/t.csv", "training"),
        "batch": land_table(
            runtime, generate(300, seed=5), "new_data/labelled.csv", "new_data", at=_later(1)
        ),
    }
    # What the scorer sent before the fix: the scored batch as `data`.
    platform.publish(RetrainRequested.start_chain(f"{reason}-1", reason=reason, data=refs["batch"]))
    platform.run()
    assert len(platform.events_of("ModelPromoted")) == 1, platform.bus.published
    (run,) = _runs(platform)
    # A performance retrain keeps the training set and adds the batch; a manual one with a
    # table trains on that table (and the labelled data that came after it).
    assert run.data_objects == [refs[name].versioned_uri for name in trains_on]


def test_a_trigger_redelivered_after_a_failed_publish_announces_the_same_version(
    trainer_settings: Settings, land_table: Land
) -> None:
    platform = _platform(trainer_settings)
    ref = land_table(platform.runtime, generate(1000, seed=1), "training/t.csv", "training")
    validated = DataValidated.start_chain(
        ref.versioned_uri, object=ref, kind="training", quality_run_id="q", rows=1000
    )
    down = BrokerDown()
    with pytest.raises(ConnectionError):  # transient: Celery delivers it again
        handle_message(
            ON_DATA_VALIDATED,
            to_wire(validated),
            on_data_validated,
            replace(platform.runtime, bus=down),
            final_attempt=False,
        )
    (lost,) = down.lost
    assert isinstance(lost, ModelPromoted) and lost.training_data is not None

    retry = handle_message(
        ON_DATA_VALIDATED,
        to_wire(validated),
        on_data_validated,
        platform.runtime,
        final_attempt=True,
    )
    (answer,) = retry.followups
    assert _same(answer, lost)  # same id, same version, same training table: nothing retrained
    assert _versions(trainer_settings) == ["1"]
    (run,) = _runs(platform)
    assert (run.status, run.model_version) == ("done", "1")
    with platform.runtime.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(model_promotions)).scalar() == 1


def test_a_trigger_whose_worker_died_mid_training_trains_again_in_its_own_run(
    trainer_settings: Settings, land_table: Land
) -> None:
    platform = _platform(trainer_settings)
    runtime = platform.runtime
    land_table(runtime, generate(1000, seed=1), "training/t.csv", "training")
    land_table(runtime, generate(300, seed=5), "new_data/labelled.csv", "new_data", at=_later(1))
    trigger = RetrainRequested.start_chain("perf-died", reason="performance")
    # The first delivery's worker died mid-training: its run row still says 'running'. That
    # must not hold its own redelivery back (a drift/performance cooldown counts running runs).
    run_id = records.run_id_for(ON_RETRAIN_REQUESTED, trigger)
    records.start_run(
        runtime.engine, trainer_settings.mlflow_model_name, "performance", "c", run_id=run_id
    )

    (answer,) = on_retrain_requested(trigger, runtime)
    assert isinstance(answer, ModelPromoted) and answer.model_version == "1"
    (run,) = _runs(platform)
    assert (run.run_id, run.status, run.model_version) == (run_id, "done", "1")


def test_a_skipped_trigger_delivered_again_stays_skipped_once(
    trainer_settings: Settings, land_table: Land
) -> None:
    platform = _platform(trainer_settings)
    ref = land_table(platform.runtime, generate(200, seed=1), "training/t.csv", "training")
    breached = PsiBreached.start_chain(
        "psi", object=ref, quality_run_id="q", features={"age": 0.4}, max_psi=0.4, threshold=0.2
    )
    for _ in range(2):  # the ledger's record was lost: the handler runs twice
        assert on_psi_breached(breached, platform.runtime) == []
    (run,) = _runs(platform)
    assert (run.run_id, run.status) == (records.run_id_for(ON_PSI_BREACHED, breached), "skipped")
    assert "new labelled row" in run.detail
