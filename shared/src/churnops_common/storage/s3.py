"""Stack-mode object store over the plain S3 API (MinIO, or any S3 server) with minio-py."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path

from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error, ServerError

from churnops_common.storage.base import (
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    validate_bucket,
    validate_key,
)

_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}
_PRECONDITION_FAILED = {"PreconditionFailed", "412"}
_CHUNK = 1 << 20


def _etag(raw: str | None) -> str:
    return (raw or "").strip('"')


def _quoted(etag: str) -> str:
    return f'"{etag}"'


def _if_match(etag: str | None) -> dict[str, str | list[str] | tuple[str]] | None:
    """The header that pins a GET to one version: the server answers 412 to other content."""
    return None if etag is None else {"If-Match": _quoted(etag)}


class S3ObjectStore(ObjectStore):
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        secure: bool = False,
        region: str | None = None,
    ) -> None:
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )

    @staticmethod
    def _check(bucket: str, key: str) -> None:
        validate_bucket(bucket)
        validate_key(key)

    def ensure_buckets(self, buckets: Iterable[str]) -> None:
        for bucket in buckets:
            validate_bucket(bucket)
            if not self.client.bucket_exists(bucket):
                try:
                    self.client.make_bucket(bucket)
                except S3Error as exc:  # another process created it in between
                    if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise

    def put_file(
        self, bucket: str, key: str, path: Path, content_type: str | None = None
    ) -> ObjectInfo:
        self._check(bucket, key)
        written = self.client.fput_object(
            bucket, key, str(path), content_type=content_type or "application/octet-stream"
        )
        # From the write's answer, not a HEAD: an upload-only user may not read objects.
        return ObjectInfo(bucket, key, _etag(written.etag), Path(path).stat().st_size)

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str | None = None
    ) -> ObjectInfo:
        self._check(bucket, key)
        written = self.client.put_object(
            bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type or "application/octet-stream",
        )
        return ObjectInfo(bucket, key, _etag(written.etag), len(data))

    def get_bytes(self, bucket: str, key: str, *, etag: str | None = None) -> bytes:
        self._check(bucket, key)
        try:
            response = self.client.get_object(bucket, key, request_headers=_if_match(etag))
        except (S3Error, ServerError) as exc:
            raise self._translate(exc, bucket, key, etag) from exc
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def download(self, bucket: str, key: str, dest: Path, *, etag: str | None = None) -> ObjectInfo:
        """One GET, streamed to `dest`; with `etag`, If-Match makes the server refuse other
        content (a stat before the read would race with an overwrite)."""
        self._check(bucket, key)
        try:
            response = self.client.get_object(bucket, key, request_headers=_if_match(etag))
        except (S3Error, ServerError) as exc:
            raise self._translate(exc, bucket, key, etag) from exc
        try:
            with dest.open("wb") as handle:
                for chunk in response.stream(_CHUNK):
                    handle.write(chunk)
            found = _etag(response.headers.get("etag"))
        finally:
            response.close()
            response.release_conn()
        return ObjectInfo(bucket, key, found, dest.stat().st_size)

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        self._check(bucket, key)
        try:
            obj = self.client.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise
        return ObjectInfo(bucket, key, _etag(obj.etag), obj.size or 0, obj.last_modified)

    def _stat_or_raise(self, bucket: str, key: str) -> ObjectInfo:
        info = self.stat(bucket, key)
        if info is None:
            raise ObjectNotFound(f"s3://{bucket}/{key} does not exist")
        return info

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_bucket(bucket)
        for obj in self.client.list_objects(bucket, prefix=prefix or None, recursive=True):
            if obj.is_dir or obj.object_name is None:
                continue
            yield ObjectInfo(
                bucket, obj.object_name, _etag(obj.etag), obj.size or 0, obj.last_modified
            )

    def copy(
        self, bucket: str, key: str, dest_bucket: str, dest_key: str, *, etag: str | None = None
    ) -> ObjectInfo:
        self._check(bucket, key)
        self._check(dest_bucket, dest_key)
        source = CopySource(bucket, key, match_etag=_quoted(etag) if etag else None)
        try:
            self.client.copy_object(dest_bucket, dest_key, source)
        except (S3Error, ServerError) as exc:
            raise self._translate(exc, bucket, key, etag) from exc
        if etag is not None:
            # S3 and MinIO honour the copy's If-Match; a server that ignores it (moto does)
            # is caught here: a source changed meanwhile takes its copy back.
            now = self.stat(bucket, key)
            if now is None or now.etag != etag:
                self.client.remove_object(dest_bucket, dest_key)
                raise ObjectChanged(bucket, key, etag, now.etag if now else None)
        return self._stat_or_raise(dest_bucket, dest_key)

    def delete(self, bucket: str, key: str) -> None:
        self._check(bucket, key)
        try:
            self.client.remove_object(bucket, key)  # S3 answers a missing key with success
        except (S3Error, ServerError) as exc:
            raise self._translate(exc, bucket, key, None) from exc

    @contextmanager
    def local_path(self, bucket: str, key: str, *, etag: str | None = None) -> Iterator[Path]:
        suffix = Path(key).suffix
        with tempfile.TemporaryDirectory(prefix="churnops-") as tmp:
            dest = Path(tmp) / f"object{suffix}"
            self.download(bucket, key, dest, etag=etag)
            yield dest

    def _translate(
        self, exc: S3Error | ServerError, bucket: str, key: str, etag: str | None = None
    ) -> Exception:
        if isinstance(exc, S3Error) and exc.code in _MISSING:
            return ObjectNotFound(f"s3://{bucket}/{key} does not exist")
        refused = (
            exc.code in _PRECONDITION_FAILED
            if isinstance(exc, S3Error)
            else exc.status_code == HTTPStatus.PRECONDITION_FAILED
        )
        if etag is not None and refused:
            now = self.stat(bucket, key)
            return ObjectChanged(bucket, key, etag, now.etag if now else None)
        return exc
