"""The promotion decision is recorded before the alias moves, and a failure at any step after
registration is finished by the redelivery: exactly one ModelPromoted, and the champion alias
names the version whose recorded decision is `promoted`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from churnops_common.db.tables import model_promotions, training_runs
from churnops_common.dispatch import handle_message
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import DataValidated, Event, ModelPromoted, ObjectRef, to_wire
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_trainer import gate, records, registry, train_model
from churnops_trainer.handlers import ON_DATA_VALIDATED, on_data_validated

Land = Callable[..., ObjectRef]


class BrokerDownOnce:
    def __init__(self, bus: Any) -> None:
        self.bus, self.failed = bus, False

    def publish(self, event: Event) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("injected: broker unreachable")
        self.bus.publish(event)


def _fail_once(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, on_call: int = 1) -> None:
    real = getattr(owner, name)
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == on_call:
            raise ConnectionError(f"injected: {name} call {on_call} failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)


STEPS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "record the decision": lambda mp: _fail_once(mp, gate, "record"),
    "save the objects": lambda mp: _fail_once(mp, train_model, "save_objects"),
    "move the challenger alias": lambda mp: _fail_once(mp, registry, "set_alias", 1),
    "move the champion alias": lambda mp: _fail_once(mp, registry, "set_alias", 2),
    "tag the version": lambda mp: _fail_once(mp, registry, "tag_version"),
    "finish the run": lambda mp: _fail_once(mp, records, "finish_done"),
    "publish": lambda mp: None,
}


def _champion(settings: Settings) -> str:
    from mlflow import MlflowClient

    from churnops_common.mlflow_setup import configure_mlflow

    configure_mlflow(settings)
    found = MlflowClient().get_model_version_by_alias(settings.mlflow_model_name, "champion")
    return str(found.version)


@pytest.mark.parametrize("step", list(STEPS))
def test_a_failure_after_registration_is_finished_once_by_the_redelivery(
    trainer_settings: Settings, land_table: Land, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    platform = EmbeddedPlatform(trainer_settings, services={"trainer"})
    runtime = platform.runtime
    ref = land_table(runtime, generate(1000, seed=1), "training/t.csv", "training")
    validated = DataValidated.start_chain(
        ref.versioned_uri, object=ref, kind="training", quality_run_id="q", rows=1000
    )
    STEPS[step](monkeypatch)
    first = replace(runtime, bus=BrokerDownOnce(runtime.bus)) if step == "publish" else runtime

    with pytest.raises(ConnectionError, match="injected"):
        handle_message(
            ON_DATA_VALIDATED, to_wire(validated), on_data_validated, first, final_attempt=False
        )
    retry = handle_message(
        ON_DATA_VALIDATED, to_wire(validated), on_data_validated, runtime, final_attempt=False
    )

    assert retry.status == "done"
    promoted = [e for e in platform.bus.published if isinstance(e, ModelPromoted)]
    assert len(promoted) == 1, platform.bus.published
    champion = _champion(trainer_settings)
    assert promoted[0].model_version == champion
    with runtime.engine.connect() as conn:
        decisions = {
            row.challenger_version: row.decision
            for row in conn.execute(sa.select(model_promotions))
        }
        (run,) = conn.execute(sa.select(training_runs)).all()
    assert decisions[champion] == "promoted"
    assert (run.status, run.model_version) == ("done", champion)
    # Only a failure before the decision was on record trains again (the version registered
    # by the failed attempt keeps no decision and no alias); every later one finishes it.
    expected = "2" if step == "record the decision" else "1"
    assert champion == expected and set(decisions) == {expected}
    stored = {o.key for o in runtime.store.list_objects(trainer_settings.minio_models_bucket)}
    name = trainer_settings.mlflow_model_name
    assert f"pipelines/{name}/v{champion}/pipeline.joblib" in stored
    assert f"training-data/{name}/v{champion}/training.parquet" in stored
