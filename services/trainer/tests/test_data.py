"""Assembling training data from the monitoring records: label files joined to scored batches."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from churnops_common.bus.local_bus import LocalBus
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import scoring_runs
from churnops_common.events import ObjectRef
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_trainer.data import assemble

Land = Callable[..., ObjectRef]


def _scored(runtime: Runtime, ref: ObjectRef, at: datetime) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(
            scoring_runs.insert().values(
                run_id=str(uuid.uuid4()),
                input_bucket=ref.bucket,
                input_key=ref.key,
                input_etag=ref.etag,
                predictions_uri="s3://predictions/x.parquet",
                model_name="churn-model",
                model_version="1",
                rows=600,
                duration_s=0.1,
                correlation_id="c",
                created_at=at,
            )
        )


def test_labels_join_scored_batches_and_the_newest_labelled_data_is_held_out(
    trainer_settings: Settings, land_table: Land
) -> None:
    runtime = Runtime.from_settings(trainer_settings, LocalBus({}))
    upgrade(runtime.engine)
    now = datetime.now(UTC)
    training = land_table(runtime, generate(1000, seed=1), "training/t.csv", "training", at=now)
    scored = generate(600, seed=2)
    batch = land_table(
        runtime,
        scored.drop(columns=["churned"]),
        "new_data/b.csv",
        "new_data",
        at=now + timedelta(seconds=1),
    )
    _scored(runtime, batch, now + timedelta(seconds=2))
    # Outcomes arrive later for 400 of the scored customers, as "yes"/"no" text.
    labels = (
        scored[["customer_id", "churned"]]
        .head(400)
        .assign(churned=lambda f: f["churned"].map({1: "yes", 0: "no"}))
    )
    land_table(runtime, labels, "labels/l.csv", "labels", at=now + timedelta(seconds=3))
    # A labelled batch from before the training set is not "since": it stays out.
    land_table(
        runtime, generate(300, seed=4), "new_data/old.csv", "new_data", at=now - timedelta(days=1)
    )

    data = assemble(runtime)

    assert len(data.train) + len(data.holdout) == 1400
    assert data.labelled_rows == 400
    assert len(data.holdout) == 160  # 40% of the joined label rows
    assert set(data.holdout["customer_id"]) <= set(labels["customer_id"])
    joined = data.holdout.merge(scored, on="customer_id", suffixes=("", "_scored"))
    assert (joined["tenure_months"] == joined["tenure_months_scored"]).all()
    assert (joined["churned"] == joined["churned_scored"]).all()
    assert data.data_objects[0] == training.versioned_uri
    assert any("labels/l.csv" in uri for uri in data.data_objects)
    assert "old.csv" not in " ".join(data.data_objects)
