"""Pick the object store the settings ask for."""

from __future__ import annotations

from churnops_common.settings import Settings
from churnops_common.storage.base import ObjectStore


def object_store_from_settings(settings: Settings, *, upload: bool = False) -> ObjectStore:
    """The store of this mode; `upload=True` (`churnops drop`) uses the upload-only user."""
    if settings.is_stack:
        from churnops_common.storage.s3 import S3ObjectStore

        access_key, secret_key = (
            settings.upload_credentials() if upload else settings.s3_credentials()
        )
        return S3ObjectStore(
            settings.minio_endpoint,
            access_key,
            secret_key,
            secure=settings.minio_secure,
            region=settings.minio_region,
        )
    from churnops_common.storage.local import LocalObjectStore

    return LocalObjectStore(settings.churnops_home / "objects")


def where_to_look(settings: Settings, uri: str) -> str:
    """Where a person finds an object: its s3:// URI in stack mode; in embedded mode the file
    itself, under CHURNOPS_HOME (an s3:// URI names nothing that exists there)."""
    from churnops_common.storage.base import parse_uri

    if settings.is_stack or not uri.startswith("s3://"):
        return uri
    try:
        bucket, key = parse_uri(uri)
    except ValueError:
        return uri
    return str(settings.churnops_home / "objects" / bucket / key)
