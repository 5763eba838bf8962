"""Pick the object store the settings ask for."""

from __future__ import annotations

from churnops_common.settings import Settings
from churnops_common.storage.base import ObjectStore


def object_store_from_settings(settings: Settings) -> ObjectStore:
    if settings.is_stack:
        from churnops_common.storage.s3 import S3ObjectStore

        return S3ObjectStore(
            settings.minio_endpoint,
            settings.minio_root_user,
            settings.minio_root_password.get_secret_value(),
            secure=settings.minio_secure,
            region=settings.minio_region,
        )
    from churnops_common.storage.local import LocalObjectStore

    return LocalObjectStore(settings.churnops_home / "objects")
