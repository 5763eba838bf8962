"""Training reads the validated version of its data: a file overwritten after quality accepted
it (flipped labels) is refused with an "object changed" outcome, and nothing is trained."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from churnops_common.db.tables import model_promotions, training_runs
from churnops_common.dispatch import handle_message
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import DataValidated, ObjectRef, to_wire
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_trainer.handlers import ON_DATA_VALIDATED, on_data_validated

Land = Callable[..., ObjectRef]


def test_a_training_set_overwritten_after_acceptance_is_not_trained_on(
    trainer_settings: Settings, land_table: Land, tmp_path: object
) -> None:
    platform = EmbeddedPlatform(trainer_settings, services={"trainer"})
    runtime = platform.runtime
    accepted = generate(1000, seed=1)
    ref = land_table(runtime, accepted, "training/t.csv", "training")
    flipped = accepted.assign(churned=1 - accepted["churned"])
    store = runtime.store
    path = trainer_settings.churnops_home / "flipped.csv"
    flipped.to_csv(path, index=False)
    overwritten = store.put_file(ref.bucket, ref.key, path)
    assert overwritten.etag != ref.etag
    validated = DataValidated.start_chain(
        ref.versioned_uri, object=ref, kind="training", quality_run_id="q", rows=1000
    )

    outcome = handle_message(
        ON_DATA_VALIDATED, to_wire(validated), on_data_validated, runtime, final_attempt=False
    )

    assert outcome.status == "dead_lettered"
    assert "object changed" in outcome.detail and ref.etag in outcome.detail
    assert platform.bus.published == []
    with runtime.engine.connect() as conn:
        (run,) = conn.execute(sa.select(training_runs)).all()
        assert conn.execute(sa.select(model_promotions)).all() == []
    assert run.status == "failed" and "object changed" in run.detail
    assert run.model_version is None
    assert list(store.list_objects(trainer_settings.minio_models_bucket)) == []
