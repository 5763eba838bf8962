"""Object storage: one interface, a local-folder store (embedded) and an S3/MinIO store (stack)."""

from churnops_common.storage.base import (
    InvalidObjectKey,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    parse_uri,
    validate_bucket,
    validate_key,
)
from churnops_common.storage.factory import object_store_from_settings

__all__ = [
    "InvalidObjectKey",
    "ObjectChanged",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "object_store_from_settings",
    "parse_uri",
    "validate_bucket",
    "validate_key",
]
