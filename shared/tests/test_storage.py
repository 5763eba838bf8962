from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from churnops_common.storage import (
    InvalidObjectKey,
    ObjectChanged,
    ObjectNotFound,
    ObjectStore,
    parse_uri,
)
from churnops_common.storage.local import LocalObjectStore

BUCKETS = ("landing", "models", "predictions")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        created: ObjectStore = LocalObjectStore(tmp_path / "objects")
    else:
        from churnops_common.storage.s3 import S3ObjectStore

        endpoint = request.getfixturevalue("moto_endpoint")
        created = S3ObjectStore(endpoint, "test-key", "test-secret", region="us-east-1")
        # moto keeps state per server: give each test its own bucket names.
        suffix = tmp_path.name.replace("_", "-").lower()[-20:].strip("-")
        request.node.bucket_suffix = suffix
    created.ensure_buckets(_buckets(request))
    created.ensure_buckets(_buckets(request))  # idempotent
    return created


def _buckets(request: pytest.FixtureRequest) -> tuple[str, ...]:
    suffix = getattr(request.node, "bucket_suffix", "")
    return tuple(f"{b}-{suffix}" if suffix else b for b in BUCKETS)


@pytest.fixture
def bucket(request: pytest.FixtureRequest, store: ObjectStore) -> str:
    return _buckets(request)[0]


def test_put_stat_get_roundtrip_with_md5_etag(store: ObjectStore, bucket: str) -> None:
    data = b"customer_id,age\nC1,40\n"
    info = store.put_bytes(bucket, "new_data/2026 batch 01.csv", data, "text/csv")
    assert info.etag == hashlib.md5(data).hexdigest()
    assert info.size == len(data)
    assert store.get_bytes(bucket, "new_data/2026 batch 01.csv") == data
    stat = store.stat(bucket, "new_data/2026 batch 01.csv")
    assert stat is not None and stat.etag == info.etag
    assert store.stat(bucket, "new_data/missing.csv") is None
    assert not store.exists(bucket, "new_data/missing.csv")


def test_list_copy_download_and_local_path(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    for name in ("b.csv", "a.csv", "sub/c.csv"):
        store.put_bytes(bucket, f"new_data/{name}", name.encode())
    store.put_bytes(bucket, "labels/x.csv", b"x")
    keys = [o.key for o in store.list_objects(bucket, "new_data/")]
    assert keys == ["new_data/a.csv", "new_data/b.csv", "new_data/sub/c.csv"]
    copied = store.copy(bucket, "new_data/a.csv", bucket, "quarantine/a.csv")
    assert store.get_bytes(bucket, copied.key) == b"a.csv"
    assert store.get_bytes(bucket, "new_data/a.csv") == b"a.csv"  # the original is kept
    store.download(bucket, "new_data/b.csv", tmp_path / "b.csv")
    assert (tmp_path / "b.csv").read_bytes() == b"b.csv"
    with store.local_path(bucket, "new_data/sub/c.csv") as path:
        assert path.read_bytes() == b"sub/c.csv"
    with pytest.raises(ObjectNotFound):
        store.get_bytes(bucket, "new_data/nope.csv")


def test_delete_removes_the_object_and_ignores_a_missing_one(
    store: ObjectStore, bucket: str
) -> None:
    store.put_bytes(bucket, "searches/s/training.parquet", b"rows")
    store.put_bytes(bucket, "searches/s/results/1.npy", b"oof")
    store.delete(bucket, "searches/s/training.parquet")
    store.delete(bucket, "searches/s/never-written.npy")
    assert not store.exists(bucket, "searches/s/training.parquet")
    assert [o.key for o in store.list_objects(bucket, "searches/")] == ["searches/s/results/1.npy"]
    with pytest.raises(InvalidObjectKey):
        store.delete(bucket, "../escape")


def test_put_file_overwrites_and_changes_etag(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "f.csv"
    source.write_text("one")
    first = store.put_file(bucket, "training/f.csv", source)
    source.write_text("two")
    second = store.put_file(bucket, "training/f.csv", source)
    assert first.etag != second.etag
    assert store.get_bytes(bucket, "training/f.csv") == b"two"


HOSTILE_KEYS = [
    "../escape.csv",
    "new_data/../../escape.csv",
    "/etc/passwd",
    "new_data//double.csv",
    "new_data/./dot.csv",
    "new_data\\windows.csv",
    "new_data/nul\x00.csv",
    "new_data/newline\n.csv",
    "",
    "..",
    "x" * 1100,
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused_by_every_store(store: ObjectStore, bucket: str, key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        store.put_bytes(bucket, key, b"x")
    with pytest.raises(InvalidObjectKey):
        store.stat(bucket, key)


@pytest.mark.parametrize("bucket_name", ["..", "UPPER", "a", "../landing", "landing/x"])
def test_bad_bucket_names_are_refused(tmp_path: Path, bucket_name: str) -> None:
    with pytest.raises(InvalidObjectKey):
        LocalObjectStore(tmp_path).ensure_buckets([bucket_name])


def test_local_store_does_not_follow_symlinks_out_of_its_root(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    store.ensure_buckets(["landing"])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (tmp_path / "objects" / "landing" / "link").symlink_to(outside)
    with pytest.raises(InvalidObjectKey, match="escapes"):
        store.get_bytes("landing", "link/secret.txt")
    with pytest.raises(InvalidObjectKey, match="escapes"):
        store.put_bytes("landing", "link/new.txt", b"x")
    assert not (outside / "new.txt").exists()


def test_local_store_missing_bucket_is_an_error(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    with pytest.raises(ObjectNotFound, match="bucket"):
        store.put_bytes("landing", "new_data/a.csv", b"x")


def test_parse_uri() -> None:
    assert parse_uri("s3://predictions/a/b.parquet") == ("predictions", "a/b.parquet")
    with pytest.raises(InvalidObjectKey):
        parse_uri("s3://predictions/../b")
    with pytest.raises(InvalidObjectKey):
        parse_uri("http://x/y")


def test_pinned_reads_refuse_an_overwritten_object(
    store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    """Every read pinned to the validated etag (If-Match on S3) refuses other content."""
    validated = store.put_bytes(bucket, "training/t.csv", b"id,churned\nC1,0\n")
    pinned = validated.etag
    assert store.get_bytes(bucket, "training/t.csv", etag=pinned) == b"id,churned\nC1,0\n"
    with store.local_path(bucket, "training/t.csv", etag=pinned) as path:
        assert path.read_bytes() == b"id,churned\nC1,0\n"
    flipped = store.put_bytes(bucket, "training/t.csv", b"id,churned\nC1,1\n")

    reads = {
        "get_bytes": lambda: store.get_bytes(bucket, "training/t.csv", etag=pinned),
        "download": lambda: store.download(
            bucket, "training/t.csv", tmp_path / "out.csv", etag=pinned
        ),
        "copy": lambda: store.copy(
            bucket, "training/t.csv", bucket, "quarantine/t.csv", etag=pinned
        ),
    }
    for name, read in reads.items():
        with pytest.raises(ObjectChanged, match="object changed") as caught:
            read()
        assert caught.value.found == flipped.etag, name
    with (
        pytest.raises(ObjectChanged, match=pinned),
        store.local_path(bucket, "training/t.csv", etag=pinned),
    ):
        pass
    assert not store.exists(bucket, "quarantine/t.csv")  # the refused copy wrote nothing
    # Unpinned reads and a pin on the current etag still work.
    assert store.get_bytes(bucket, "training/t.csv", etag=flipped.etag).endswith(b"C1,1\n")


def test_a_local_pin_survives_an_overwrite_while_it_is_read(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    store.ensure_buckets(["landing"])
    first = store.put_bytes("landing", "new_data/b.csv", b"old")
    with store.local_path("landing", "new_data/b.csv", etag=first.etag) as path:
        store.put_bytes("landing", "new_data/b.csv", b"new")
        assert path.read_bytes() == b"old"  # the pinned version, not the replacement


def test_local_objects_get_the_users_umask_not_a_temporary_files_0600(tmp_path: Path) -> None:
    import os
    import stat

    from churnops_common.storage import local

    store = LocalObjectStore(tmp_path / "objects")
    store.ensure_buckets(["outputs"])
    source = tmp_path / "source.csv"
    source.write_text("a\n1\n")
    previous = os.umask(0o027)
    local._file_mode.cache_clear()
    try:
        store.put_file("outputs", "one.csv", source)
        store.put_bytes("outputs", "two.csv", b"a\n2\n")
    finally:
        os.umask(previous)
        local._file_mode.cache_clear()
    for name in ("one.csv", "two.csv"):
        mode = stat.S_IMODE((tmp_path / "objects" / "outputs" / name).stat().st_mode)
        assert mode == 0o640, oct(mode)
