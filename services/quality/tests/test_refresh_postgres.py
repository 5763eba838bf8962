"""The baseline refresh's compare-and-set on real Postgres: refreshes are serialised by an
advisory lock, so a refresh waits while another one holds it, and the newest model wins."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import ObjectRef
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_quality.baseline import current_pointer
from churnops_quality.refresh import baseline_lock, refresh_baseline

# Advisory locks waited on in this test's own (fresh) database.
WAITING = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _training(platform: EmbeddedPlatform, tmp_path: Path, name: str, seed: int) -> ObjectRef:
    path = tmp_path / name
    generate(800, seed=seed).to_csv(path, index=False)
    info = platform.runtime.store.put_file("landing", f"training/{name}", path)
    return ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)


@pytest.mark.services
def test_refreshes_are_serialised_and_the_newest_model_wins(
    settings: Settings, tmp_path: Path, postgres_url: str
) -> None:
    platform = EmbeddedPlatform(
        settings.model_copy(update={"monitoring_db_url": postgres_url}), services={"quality"}
    )
    runtime = platform.runtime
    v3 = _training(platform, tmp_path, "train-v3.csv", seed=3)
    v2 = _training(platform, tmp_path, "train-v2.csv", seed=2)
    results: dict[str, int | None] = {}

    def refresh(data: ObjectRef, version: str) -> None:
        results[version] = refresh_baseline(runtime, data, version)

    with baseline_lock(runtime.engine):  # another worker is mid-refresh
        worker = threading.Thread(target=refresh, args=(v3, "3"))
        worker.start()
        with runtime.engine.connect() as conn:
            for _ in range(600):  # until the worker waits on the lock (bounded poll)
                if conn.execute(sa.text(WAITING)).scalar():
                    break
                threading.Event().wait(0.05)
            assert conn.execute(sa.text(WAITING)).scalar() == 1
        assert current_pointer(runtime.store, platform.settings) is None  # it did not write
    worker.join()
    refresh(v2, "2")  # the older promotion, handled last
    assert results == {"3": 1, "2": None}
    pointer = current_pointer(runtime.store, platform.settings)
    assert pointer is not None
    assert (pointer.version, pointer.source, pointer.model_version) == (1, v3.versioned_uri, "3")
    runtime.engine.dispose()


@pytest.mark.services
def test_the_first_baseline_is_created_once_under_the_lock(
    settings: Settings, tmp_path: Path, postgres_url: str
) -> None:
    """Two training sets accepted at once: the one that waited on the lock keeps the other's
    v1 instead of writing its own files over it."""
    from churnops_common.events import DataLanded
    from churnops_quality.handlers import on_data_landed

    platform = EmbeddedPlatform(
        settings.model_copy(update={"monitoring_db_url": postgres_url}), services={"quality"}
    )
    runtime = platform.runtime
    first, second = (_training(platform, tmp_path, f"train-{n}.csv", seed=n) for n in (1, 2))

    def land(ref: ObjectRef) -> None:
        landed = DataLanded.start_chain(ref.versioned_uri, object=ref, kind="training")
        on_data_landed(landed, runtime)

    with baseline_lock(runtime.engine):  # the first set's worker is writing v1
        worker = threading.Thread(target=land, args=(second,))
        worker.start()
        with runtime.engine.connect() as conn:
            for _ in range(1200):
                if conn.execute(sa.text(WAITING)).scalar():
                    break
                threading.Event().wait(0.05)
            assert conn.execute(sa.text(WAITING)).scalar() == 1
        assert current_pointer(runtime.store, platform.settings) is None
    land(first)
    worker.join()
    pointer = current_pointer(runtime.store, platform.settings)
    assert pointer is not None and pointer.version == 1
    assert pointer.source in {first.versioned_uri, second.versioned_uri}
    objects = [o.key for o in runtime.store.list_objects(platform.settings.minio_models_bucket)]
    assert [k for k in objects if k.endswith("schema.json")] == [
        "quality/baseline/churn-model/v0001/schema.json"
    ]


@pytest.mark.services
def test_files_the_stores_refuse_become_recorded_rejections_and_are_not_swept_again(
    settings: Settings, tmp_path: Path, postgres_url: str
) -> None:
    """A NUL in the header (Postgres refuses it in text) and a key segment near the file
    system's name limit: both recorded as rejections with a reason; the sweep is then quiet."""
    from churnops_common.db.tables import quality_runs
    from churnops_common.events import SweepRequested

    platform = EmbeddedPlatform(
        settings.model_copy(update={"monitoring_db_url": postgres_url}), services={"quality"}
    )
    runtime = platform.runtime
    training = tmp_path / "train.csv"
    generate(800, seed=1).to_csv(training, index=False)
    platform.drop(training, "training")
    platform.run()
    nul = tmp_path / "nul.csv"
    frame = generate(200, seed=2).rename(columns={"age": "ag\x00e"})
    frame.to_csv(nul, index=False)
    platform.drop(nul, "new_data")
    long_name = "b" * 250 + ".csv"  # 254 bytes: its old etag file name (+".json") did not fit
    generate(100, seed=3).to_csv(tmp_path / "long.csv", index=False)
    platform.drop(tmp_path / "long.csv", "new_data", name=long_name)
    platform.run()

    with runtime.engine.connect() as conn:
        runs = {r.object_key: r for r in conn.execute(sa.select(quality_runs))}
    assert runs["new_data/nul.csv"].status == "rejected"
    assert "NUL byte" in runs["new_data/nul.csv"].reason
    assert runs["training/train.csv"].status == "accepted"
    assert runs[f"new_data/{long_name}"].status == "rejected"
    assert "key segment of 254 bytes" in runs[f"new_data/{long_name}"].reason
    rejected = {e.object.key for e in platform.events_of("DataRejected")}  # type: ignore[attr-defined]
    assert rejected == {"new_data/nul.csv", f"new_data/{long_name}"}

    before = len(platform.bus.published)
    platform.publish(SweepRequested.start_chain("sweep-after"))
    platform.run()
    assert [e.event_type for e in platform.bus.published[before:]] == ["SweepRequested"]
