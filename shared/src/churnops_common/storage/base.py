"""The object-store interface and the key rules every implementation enforces."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from churnops_common.errors import PermanentError

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024


class InvalidObjectKey(ValueError):
    """A bucket name or object key that could escape its place or that S3 would not accept."""


class ObjectNotFound(FileNotFoundError):
    """The object does not exist."""


class ObjectChanged(PermanentError):
    """A pinned read found other content than the version it was pinned to (the etag that was
    validated): the object was overwritten since, and the old version is gone."""

    def __init__(self, bucket: str, key: str, expected: str, found: str | None = None) -> None:
        now = f"; it is now {found}" if found else ""
        super().__init__(
            f"object changed: s3://{bucket}/{key} is no longer the validated version"
            f" (etag {expected}{now}); nothing was read from it. The new content is validated"
            " on its own when its notification (or the sweep) reaches quality"
        )
        self.bucket, self.key, self.expected, self.found = bucket, key, expected, found


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    bucket: str
    key: str
    etag: str
    size: int
    last_modified: datetime | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def validate_bucket(bucket: str) -> str:
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise InvalidObjectKey(f"invalid bucket name {bucket!r}: use 3-63 of a-z, 0-9, '.', '-'")
    return bucket


def validate_key(key: str) -> str:
    """Reject keys that are empty, absolute, contain `.`/`..` segments, backslashes or controls."""
    if not key:
        raise InvalidObjectKey("empty object key")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidObjectKey(f"object key longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidObjectKey(f"absolute object key {key!r}")
    if "\\" in key:
        raise InvalidObjectKey(f"backslash in object key {key!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidObjectKey(f"control character in object key {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidObjectKey(f"object key {key!r} has an empty, '.' or '..' segment")
    return key


def parse_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key), validated."""
    if not uri.startswith("s3://"):
        raise InvalidObjectKey(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return validate_bucket(bucket), validate_key(key)


class ObjectStore(ABC):
    """What the platform needs from object storage; keys are validated by every implementation."""

    @abstractmethod
    def ensure_buckets(self, buckets: Iterable[str]) -> None:
        """Create the buckets that do not exist yet."""

    @abstractmethod
    def put_file(
        self, bucket: str, key: str, path: Path, content_type: str | None = None
    ) -> ObjectInfo: ...

    @abstractmethod
    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str | None = None
    ) -> ObjectInfo: ...

    # `etag` pins a read to one version of the object: a different content raises
    # ObjectChanged instead of being read (every read downstream of validation passes it).

    @abstractmethod
    def get_bytes(self, bucket: str, key: str, *, etag: str | None = None) -> bytes: ...

    @abstractmethod
    def download(
        self, bucket: str, key: str, dest: Path, *, etag: str | None = None
    ) -> ObjectInfo: ...

    @abstractmethod
    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's info, or None when it does not exist."""

    @abstractmethod
    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under a prefix (recursive), in key order."""

    @abstractmethod
    def copy(
        self, bucket: str, key: str, dest_bucket: str, dest_key: str, *, etag: str | None = None
    ) -> ObjectInfo: ...

    @abstractmethod
    def local_path(
        self, bucket: str, key: str, *, etag: str | None = None
    ) -> AbstractContextManager[Path]:
        """A readable local file with the object's content for the duration of the block.

        The local store hands out its own file; the S3 store downloads to a temporary file, so
        readers can stream a file of any size in chunks without holding it in memory.
        """

    @abstractmethod
    def delete(self, bucket: str, key: str) -> None:
        """Remove the object; nothing happens when it does not exist."""

    def exists(self, bucket: str, key: str) -> bool:
        return self.stat(bucket, key) is not None
