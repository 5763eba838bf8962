"""Stack-mode object store over the plain S3 API (MinIO, or any S3 server) with minio-py."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from churnops_common.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    validate_bucket,
    validate_key,
)

_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}


def _etag(raw: str | None) -> str:
    return (raw or "").strip('"')


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

    def get_bytes(self, bucket: str, key: str) -> bytes:
        self._check(bucket, key)
        try:
            response = self.client.get_object(bucket, key)
        except S3Error as exc:
            raise self._translate(exc, bucket, key) from exc
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def download(self, bucket: str, key: str, dest: Path) -> ObjectInfo:
        self._check(bucket, key)
        try:
            self.client.fget_object(bucket, key, str(dest))
        except S3Error as exc:
            raise self._translate(exc, bucket, key) from exc
        return self._stat_or_raise(bucket, key)

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

    def copy(self, bucket: str, key: str, dest_bucket: str, dest_key: str) -> ObjectInfo:
        self._check(bucket, key)
        self._check(dest_bucket, dest_key)
        try:
            self.client.copy_object(dest_bucket, dest_key, CopySource(bucket, key))
        except S3Error as exc:
            raise self._translate(exc, bucket, key) from exc
        return self._stat_or_raise(dest_bucket, dest_key)

    @contextmanager
    def local_path(self, bucket: str, key: str) -> Iterator[Path]:
        suffix = Path(key).suffix
        with tempfile.TemporaryDirectory(prefix="churnops-") as tmp:
            dest = Path(tmp) / f"object{suffix}"
            self.download(bucket, key, dest)
            yield dest

    @staticmethod
    def _translate(exc: S3Error, bucket: str, key: str) -> Exception:
        if exc.code in _MISSING:
            return ObjectNotFound(f"s3://{bucket}/{key} does not exist")
        return exc
