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
        "quality/baseline/v0001/schema.json"
    ]
