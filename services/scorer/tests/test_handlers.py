"""The scorer's handlers in embedded mode, with a real local MLflow registry and SQLite."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from churnops_common.bus import Bus
from churnops_common.db.tables import scoring_jobs, scoring_runs
from churnops_common.dispatch import handle_message
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import (
    BatchScored,
    DataValidated,
    Event,
    ModelPromoted,
    ObjectRef,
    RetrainRequested,
    ScoreChunkRequested,
    to_wire,
)
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.settings import Settings
from churnops_scorer import service
from churnops_scorer.handlers import on_data_validated, on_score_chunk_requested
from churnops_scorer.models import CACHE_KEY, LoadedModel

from .conftest import ID, TARGET, batch_file, register_champion


def _land(
    platform: EmbeddedPlatform,
    path: Path,
    *,
    event_key: str | None = None,
    has_target: bool = False,
) -> DataValidated:
    info = platform.runtime.store.put_file("landing", f"new_data/{path.name}", path)
    ref = ObjectRef(bucket="landing", key=info.key, etag=info.etag, size=info.size)
    rows = len(pd.read_csv(path)) if path.suffix == ".csv" else len(pd.read_parquet(path))
    return DataValidated.start_chain(
        event_key or ref.versioned_uri,
        object=ref,
        kind="new_data",
        quality_run_id="q-1",
        rows=rows,
        has_target=has_target,
    )


def _scored(platform: EmbeddedPlatform) -> list[BatchScored]:
    return [e for e in platform.events_of("BatchScored") if isinstance(e, BatchScored)]


def _runs(platform: EmbeddedPlatform) -> list[sa.Row]:  # type: ignore[type-arg]
    with platform.runtime.engine.connect() as conn:
        return list(conn.execute(sa.select(scoring_runs).order_by(scoring_runs.c.created_at)))


def _predictions(platform: EmbeddedPlatform, event: BatchScored) -> pd.DataFrame:
    store = platform.runtime.store
    with store.local_path(event.predictions.bucket, event.predictions.key) as path:
        return pd.read_parquet(path)


def test_a_validated_batch_is_scored_with_outputs_and_a_run_row(
    platform: EmbeddedPlatform, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    version = register_champion(platform.settings, pipeline, 0.5)
    path = batch_file(tmp_path, 500, seed=21)
    validated = _land(platform, path)
    platform.publish(validated)
    platform.run()

    (scored,) = _scored(platform)
    etag = validated.object.etag
    assert scored.predictions.key == f"new_data/batch-21/{etag[:12]}/v{version}/predictions.parquet"
    assert (scored.model_version, scored.rows, scored.has_target) == (version, 500, False)
    out = _predictions(platform, scored)
    inputs = pd.read_csv(path)
    np.testing.assert_allclose(
        out["churn_probability"], pipeline.churn_probability(inputs), atol=1e-12
    )
    assert out[ID].tolist() == inputs[ID].tolist()
    assert set(out["input_object"]) == {"s3://landing/new_data/batch-21.csv"}

    (run,) = _runs(platform)
    assert (run.run_id, run.rows, run.model_version) == (scored.scoring_run_id, 500, version)
    assert run.input_etag == etag and run.predictions_uri == scored.predictions.uri
    assert run.score_mean == pytest.approx(out["churn_probability"].mean())
    assert run.roc_auc is None and run.duration_s > 0
    retention = pd.read_csv(
        pd.io.common.BytesIO(
            platform.runtime.store.get_bytes(
                "predictions",
                scored.predictions.key.replace("predictions.parquet", "retention.csv"),
            )
        )
    )
    assert len(retention) == platform.settings.retention_top_k
    assert retention["expected_profit"].is_monotonic_decreasing
    # The profit cut: whoever is contacted is worth contacting, and comes before the rest.
    contact = retention["contact"].to_numpy(dtype=bool)
    assert (retention["expected_profit"][contact] > 0).all()
    assert contact.tolist() == sorted(contact.tolist(), reverse=True)
    (campaign,) = _campaigns(platform)
    assert campaign.scoring_run_id == scored.scoring_run_id
    assert campaign.contacted >= contact.sum() > 0
    assert campaign.expected_profit >= retention["expected_profit"][contact].sum() - 1e-6


def _campaigns(platform: EmbeddedPlatform) -> list[Any]:
    from churnops_common.db.tables import retention_campaigns

    with platform.runtime.engine.connect() as conn:
        return list(conn.execute(sa.select(retention_campaigns)).all())


def test_other_kinds_and_no_champion_are_left_alone(
    platform: EmbeddedPlatform, tmp_path: Path
) -> None:
    validated = _land(platform, batch_file(tmp_path, 50, seed=22))
    platform.publish(validated)  # no champion registered yet: logged, nothing written
    platform.publish(validated.model_copy(update={"kind": "labels", "event_id": "other"}))
    platform.run()
    assert _scored(platform) == [] and _runs(platform) == []
    assert platform.runtime.ledger.outcome(validated.correlation_id)["dead_letters"] == 0


def test_a_labelled_batch_below_the_holdout_pr_auc_requests_a_retrain(
    platform: EmbeddedPlatform, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    register_champion(platform.settings, pipeline, 0.99)
    platform.publish(
        _land(platform, batch_file(tmp_path, 600, seed=23, target=True, drift=1.0), has_target=True)
    )
    platform.run()
    (scored,) = _scored(platform)
    assert scored.has_target and scored.pr_auc is not None and scored.roc_auc is not None
    (retrain,) = platform.events_of("RetrainRequested")
    assert isinstance(retrain, RetrainRequested)
    assert retrain.reason == "performance"
    # The batch is named, not sent as `data`: the trainer would train on it alone.
    assert retrain.data is None and scored.input.versioned_uri in retrain.detail
    out = _predictions(platform, scored)
    assert out[TARGET].isin([0, 1]).all()


def test_no_retrain_when_the_holdout_metric_is_not_registered(
    platform: EmbeddedPlatform, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    register_champion(platform.settings, pipeline, None)
    platform.publish(
        _land(platform, batch_file(tmp_path, 300, seed=24, target=True), has_target=True)
    )
    platform.run()
    assert len(_scored(platform)) == 1 and platform.events_of("RetrainRequested") == []


def test_duplicate_events_and_a_redelivery_give_one_output_and_one_row(
    platform: EmbeddedPlatform,
    pipeline: ChurnPipeline,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_champion(platform.settings, pipeline, None)
    path = batch_file(tmp_path, 200, seed=25)
    first = _land(platform, path, event_key="one")
    # The monitoring DB fails right after the outputs are uploaded: the worker "dies" there.
    real_record = service.runs.record_run
    calls = {"n": 0}

    def flaky(engine: sa.Engine, values: dict[str, object]) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("connection lost mid-batch")
        return real_record(engine, values)

    monkeypatch.setattr(service.runs, "record_run", flaky)
    platform.publish(first)
    platform.run()  # dead-lettered in embedded mode (no retries); a worker would redeliver
    assert _runs(platform) == []
    outcome = handle_message(
        "churnops.scorer.on_data_validated",
        to_wire(first),
        on_data_validated,
        platform.runtime,
        final_attempt=True,
    )
    assert [e.event_type for e in outcome.followups] == ["BatchScored"]
    # The same batch announced again by another event, and the first one delivered twice.
    platform.publish(_land(platform, path, event_key="two"))
    platform.publish(first)
    platform.run()
    assert len(_runs(platform)) == 1
    keys = [o.key for o in platform.runtime.store.list_objects("predictions")]
    assert sum(k.endswith("predictions.parquet") for k in keys) == 1


def test_hot_swap_picks_up_a_new_champion_and_rescores(
    platform: EmbeddedPlatform, pipeline: ChurnPipeline, pipeline_v2: ChurnPipeline, tmp_path: Path
) -> None:
    v1 = register_champion(platform.settings, pipeline, None)
    path = batch_file(tmp_path, 300, seed=26)
    platform.publish(_land(platform, path))
    platform.run()
    cached = platform.runtime.cache[CACHE_KEY]
    assert isinstance(cached, LoadedModel) and cached.version == v1

    v2 = register_champion(platform.settings, pipeline_v2, None)
    platform.publish(
        ModelPromoted.start_chain(
            f"promoted-{v2}",
            model_name=platform.settings.mlflow_model_name,
            model_version=v2,
            model_uri="file:///not/trusted",
            challenger_pr_auc=0.6,
            previous_version=v1,
        )
    )
    platform.run()
    cached = platform.runtime.cache[CACHE_KEY]
    assert isinstance(cached, LoadedModel) and cached.version == v2
    first, rescored = _scored(platform)
    assert (first.model_version, rescored.model_version) == (v1, v2)
    assert first.input == rescored.input and first.predictions != rescored.predictions
    out = _predictions(platform, rescored)
    np.testing.assert_allclose(
        out["churn_probability"], pipeline_v2.churn_probability(pd.read_csv(path)), atol=1e-12
    )
    assert [r.model_version for r in _runs(platform)] == [v1, v2]


def test_a_replica_that_missed_the_promotion_still_swaps(
    platform: EmbeddedPlatform, pipeline: ChurnPipeline, pipeline_v2: ChurnPipeline, tmp_path: Path
) -> None:
    register_champion(platform.settings, pipeline, None)
    platform.publish(_land(platform, batch_file(tmp_path, 100, seed=27)))
    platform.run()
    v2 = register_champion(platform.settings, pipeline_v2, None)  # no event reaches us
    platform.publish(_land(platform, batch_file(tmp_path, 100, seed=28)))
    platform.run()
    assert [e.model_version for e in _scored(platform)][-1] == v2


def _split_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "scorer_split_bytes": 1,
            "scorer_task_rows": 300,
            "scorer_chunk_rows": 70,
            "scorer_write_csv": True,
        }
    )


def test_a_split_batch_gives_one_output_equal_to_unsplit_scoring(
    scorer_settings: Settings, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    platform = EmbeddedPlatform(_split_settings(scorer_settings), services={"scorer"})
    register_champion(platform.settings, pipeline, None)
    path = batch_file(tmp_path, 1000, seed=29, target=True)
    validated = _land(platform, path, has_target=True)
    platform.publish(validated)
    platform.run()

    chunks = [
        e for e in platform.events_of("ScoreChunkRequested") if isinstance(e, ScoreChunkRequested)
    ]
    assert [(c.row_start, c.row_stop) for c in chunks] == [
        (0, 300),
        (300, 600),
        (600, 900),
        (900, 1000),
    ]
    (scored,) = _scored(platform)
    (run,) = _runs(platform)
    assert run.rows == 1000 and run.roc_auc is not None
    split = _predictions(platform, scored)
    csv = platform.runtime.store.get_bytes(
        "predictions", scored.predictions.key.replace(".parquet", ".csv")
    )
    as_csv = pd.read_csv(pd.io.common.BytesIO(csv), dtype={ID: str})
    assert as_csv[ID].tolist() == split[ID].tolist()  # CSV on request, assembled in order too

    # The same file scored in one go, by the same code without the split.
    whole = EmbeddedPlatform(
        scorer_settings.model_copy(update={"churnops_home": tmp_path / "other"}),
        services={"scorer"},
    )
    whole.publish(_land(whole, path, has_target=True))
    whole.run()
    (unsplit_event,) = _scored(whole)
    unsplit = _predictions(whole, unsplit_event)
    pd.testing.assert_frame_equal(split, unsplit)
    (unsplit_run,) = _runs(whole)
    assert run.pr_auc == pytest.approx(unsplit_run.pr_auc)
    assert run.score_p90 == pytest.approx(unsplit_run.score_p90)

    # A chunk delivered again after assembly changes nothing.
    again: Event = chunks[1].model_copy(update={"event_id": "redelivered"})
    platform.publish(again)
    platform.run()
    assert len(_runs(platform)) == 1 and len(_scored(platform)) == 1
    with platform.runtime.engine.connect() as conn:
        assert conn.execute(sa.select(scoring_jobs.c.status)).scalar_one() == "done"


class BrokerDownFor:
    """A bus whose broker is unreachable for the first publish of one event type (a real
    failure mode: Redis gone between the handler's return and its follow-ups' publication)."""

    def __init__(self, inner: Bus, event_type: str) -> None:
        self.inner, self.event_type = inner, event_type
        self.published: list[Event] = []
        self.lost: list[Event] = []

    def publish(self, event: Event) -> None:
        if event.event_type == self.event_type and not self.lost:
            self.lost.append(event)
            raise ConnectionError("broker unreachable")
        self.published.append(event)
        self.inner.publish(event)


def _same(a: Event, b: Event) -> bool:
    return a.model_dump(exclude={"occurred_at"}) == b.model_dump(exclude={"occurred_at"})


def test_a_retry_after_a_failed_publish_announces_the_recorded_run_again(
    platform: EmbeddedPlatform, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    register_champion(platform.settings, pipeline, 0.99)
    path = batch_file(tmp_path, 600, seed=30, target=True, drift=1.0)
    validated = _land(platform, path, has_target=True)
    task = "churnops.scorer.on_data_validated"
    down = BrokerDownFor(platform.bus, "RetrainRequested")
    with pytest.raises(ConnectionError):  # transient: Celery retries it
        handle_message(
            task,
            to_wire(validated),
            on_data_validated,
            replace(platform.runtime, bus=down),
            final_attempt=False,
        )
    (first_scored,), (first_retrain,) = down.published, down.lost
    assert len(_runs(platform)) == 1

    retry = handle_message(
        task, to_wire(validated), on_data_validated, platform.runtime, final_attempt=True
    )
    assert retry.status == "done"
    scored, retrain = retry.followups
    # The same events (ids and contents), rebuilt from the run row and the predictions file.
    assert _same(scored, first_scored) and _same(retrain, first_retrain)
    assert len(_runs(platform)) == 1
    keys = [o.key for o in platform.runtime.store.list_objects("predictions")]
    assert sum(k.endswith("predictions.parquet") for k in keys) == 1
    # Another chain asking for the same batch finds it done: no second announcement.
    other = _land(platform, path, event_key="another chain", has_target=True)
    assert on_data_validated(other, platform.runtime) == []


def test_a_split_batch_is_announced_again_when_its_assembler_is_retried(
    scorer_settings: Settings, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    platform = EmbeddedPlatform(_split_settings(scorer_settings), services={"scorer"})
    register_champion(platform.settings, pipeline, 0.99)
    validated = _land(
        platform, batch_file(tmp_path, 700, seed=31, target=True, drift=1.0), has_target=True
    )
    down = BrokerDownFor(platform.bus, "BatchScored")
    platform.runtime.bus = down
    platform.publish(validated)
    platform.run()  # embedded: no retries, so the assembling chunk is dead-lettered
    (lost,) = down.lost
    assert _scored(platform) == [] and len(_runs(platform)) == 1
    with platform.runtime.engine.connect() as conn:
        assembler = conn.execute(sa.select(scoring_jobs.c.assembler_chunk)).scalar_one()
    chunks = {
        e.chunk_index: e
        for e in platform.events_of("ScoreChunkRequested")
        if isinstance(e, ScoreChunkRequested)
    }

    retry = handle_message(
        "churnops.scorer.on_score_chunk_requested",
        to_wire(chunks[assembler]),
        on_score_chunk_requested,
        platform.runtime,
        final_attempt=True,
    )
    assert [e.event_type for e in retry.followups] == ["BatchScored", "RetrainRequested"]
    assert _same(retry.followups[0], lost)
    with platform.runtime.engine.connect() as conn:
        assert conn.execute(sa.select(scoring_jobs.c.status)).scalar_one() == "done"
    # The other chunks, and the batch's own event, leave the announcing to the assembler.
    other = next(i for i in chunks if i != assembler)
    assert on_score_chunk_requested(chunks[other], platform.runtime) == []
    assert on_data_validated(validated, platform.runtime) == []
    assert len(_runs(platform)) == 1


def test_chunk_tasks_take_the_model_and_input_from_the_job_not_the_event(
    scorer_settings: Settings, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    platform = EmbeddedPlatform(_split_settings(scorer_settings), services={"scorer"})
    version = register_champion(platform.settings, pipeline, None)
    validated = _land(platform, batch_file(tmp_path, 1000, seed=29))
    decoy = _land(platform, batch_file(tmp_path, 50, seed=30, name="decoy.csv"))
    # The split only: its chunk tasks are queued, not yet handled.
    split = handle_message(
        "churnops.scorer.on_data_validated",
        to_wire(validated),
        on_data_validated,
        platform.runtime,
        final_attempt=True,
    )
    assert split.status == "done"
    forged = 0
    for _, payload in platform.bus.pending:
        if payload["event_type"] == "ScoreChunkRequested":
            payload["model_version"] = "999"
            payload["input"] = decoy.object.model_dump(mode="json")
            forged += 1
    assert forged == 4
    platform.run()

    (scored,) = _scored(platform)
    assert scored.model_version == version
    assert (scored.input.key, scored.input.etag) == (validated.object.key, validated.object.etag)
    assert scored.rows == 1000
    (run,) = _runs(platform)
    assert (run.input_key, run.input_etag) == (validated.object.key, validated.object.etag)
