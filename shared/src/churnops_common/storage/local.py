"""Embedded-mode object store: one folder per bucket under a root, with validated keys."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from churnops_common.storage.base import (
    InvalidObjectKey,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    validate_bucket,
    validate_key,
)

_META_DIR = ".meta"  # etags live beside the data, outside every bucket's namespace
_CHUNK = 1 << 20


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@functools.cache
def _file_mode() -> int:
    """What a file created by `open()` gets under this process's umask (a temporary file is
    0600 whatever the umask: the published object must not be)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)  # no /proc: read it by setting it, and put it back at once
    os.umask(current)
    return 0o666 & ~current


def _replace(temporary: str, dest: Path) -> None:
    """Publish a finished temporary file at `dest`, with the mode of any file the user makes."""
    os.chmod(temporary, _file_mode())
    os.replace(temporary, dest)


class LocalObjectStore(ObjectStore):
    """Objects as files under `root/<bucket>/<key>`; etags are content MD5s, as S3 gives."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, bucket: str, key: str) -> Path:
        validate_bucket(bucket)
        validate_key(key)
        bucket_dir = self.root / bucket
        path = (bucket_dir / key).resolve()
        # Belt and braces: symlinks inside the root must not lead out of the bucket either.
        if not path.is_relative_to(bucket_dir.resolve()):
            raise InvalidObjectKey(f"object key {key!r} escapes bucket {bucket!r}")
        return path

    def _meta_path(self, bucket: str, key: str) -> Path:
        # Named by the key's hash: a key whose last segment nearly fills the file system's
        # name limit must still get its etag file (`<key>.json` would not fit).
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / _META_DIR / bucket / digest[:2] / f"{digest}.json"

    def ensure_buckets(self, buckets: Iterable[str]) -> None:
        for bucket in buckets:
            (self.root / validate_bucket(bucket)).mkdir(parents=True, exist_ok=True)

    def _bucket_dir(self, bucket: str) -> Path:
        path = self.root / validate_bucket(bucket)
        if not path.is_dir():
            raise ObjectNotFound(f"bucket {bucket!r} does not exist")
        return path

    def put_file(
        self, bucket: str, key: str, path: Path, content_type: str | None = None
    ) -> ObjectInfo:
        dest = self._path(bucket, key)
        self._bucket_dir(bucket)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the destination, then rename: readers never see half a file.
        with (
            tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, prefix=".put-") as tmp,
            Path(path).open("rb") as source,
        ):
            shutil.copyfileobj(source, tmp, _CHUNK)
        _replace(tmp.name, dest)
        return self._record(bucket, key, dest)

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str | None = None
    ) -> ObjectInfo:
        dest = self._path(bucket, key)
        self._bucket_dir(bucket)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, prefix=".put-") as tmp:
            tmp.write(data)
        _replace(tmp.name, dest)
        return self._record(bucket, key, dest)

    def _record(self, bucket: str, key: str, path: Path) -> ObjectInfo:
        stat = path.stat()
        info = ObjectInfo(
            bucket, key, _md5_of(path), stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)
        )
        meta = self._meta_path(bucket, key)
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(
            json.dumps({"etag": info.etag, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        )
        return info

    def get_bytes(self, bucket: str, key: str, *, etag: str | None = None) -> bytes:
        data = self._existing(bucket, key).read_bytes()
        if etag is not None:
            found = hashlib.md5(data, usedforsecurity=False).hexdigest()
            if found != etag:
                raise ObjectChanged(bucket, key, etag, found)
        return data

    def _existing(self, bucket: str, key: str) -> Path:
        path = self._path(bucket, key)
        if not path.is_file():
            raise ObjectNotFound(f"s3://{bucket}/{key} does not exist")
        return path

    def download(self, bucket: str, key: str, dest: Path, *, etag: str | None = None) -> ObjectInfo:
        with self.local_path(bucket, key, etag=etag) as path:
            shutil.copyfile(path, dest)
            stat = dest.stat()
            found = etag or _md5_of(dest)
        return ObjectInfo(
            bucket, key, found, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)
        )

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        path = self._path(bucket, key)
        if not path.is_file():
            return None
        stat = path.stat()
        meta = self._meta_path(bucket, key)
        if meta.is_file():
            cached = json.loads(meta.read_text())
            if cached["size"] == stat.st_size and cached["mtime_ns"] == stat.st_mtime_ns:
                return ObjectInfo(
                    bucket,
                    key,
                    cached["etag"],
                    stat.st_size,
                    datetime.fromtimestamp(stat.st_mtime, UTC),
                )
        return self._record(bucket, key, path)  # written by hand: compute and cache its etag

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        bucket_dir = self._bucket_dir(bucket)
        keys = sorted(
            p.relative_to(bucket_dir).as_posix()
            for p in bucket_dir.rglob("*")
            if p.is_file() and not p.name.startswith(".put-")
        )
        for key in keys:
            if key.startswith(prefix):
                info = self.stat(bucket, key)
                if info is not None:
                    yield info

    def copy(
        self, bucket: str, key: str, dest_bucket: str, dest_key: str, *, etag: str | None = None
    ) -> ObjectInfo:
        with self.local_path(bucket, key, etag=etag) as path:
            return self.put_file(dest_bucket, dest_key, path)

    def delete(self, bucket: str, key: str) -> None:
        self._path(bucket, key).unlink(missing_ok=True)
        self._meta_path(bucket, key).unlink(missing_ok=True)

    @contextmanager
    def local_path(self, bucket: str, key: str, *, etag: str | None = None) -> Iterator[Path]:
        path = self._existing(bucket, key)
        if etag is None:
            yield path
            return
        # Pin the version: a hard link keeps this inode readable whatever replaces the key
        # afterwards (writes are renames), and the check runs on the linked inode itself.
        pins = self.root / _META_DIR / "pinned"
        pins.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=pins) as tmp:
            pinned = Path(tmp) / f"object{path.suffix}"
            os.link(path, pinned)
            found = self._etag_of(bucket, key, pinned)
            if found != etag:
                raise ObjectChanged(bucket, key, etag, found)
            yield pinned

    def _etag_of(self, bucket: str, key: str, path: Path) -> str:
        """The recorded etag when the file is still the recorded one, else its MD5 now."""
        stat = path.stat()
        meta = self._meta_path(bucket, key)
        if meta.is_file():
            cached = json.loads(meta.read_text())
            if cached["size"] == stat.st_size and cached["mtime_ns"] == stat.st_mtime_ns:
                return str(cached["etag"])
        return _md5_of(path)
