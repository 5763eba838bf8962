"""The sweep: landed objects that no quality run has finished, announced again.

A lost MinIO notification then only delays work: the next sweep finds the object (its
`bucket/key@etag` has no `done` ledger row for the DataLanded task) and re-emits DataLanded.
"""

from __future__ import annotations

from collections.abc import Iterator

from churnops_common.bridge import KIND_PREFIXES
from churnops_common.events import DataKind, DataLanded, ObjectRef, SweepRequested
from churnops_common.runtime import Runtime

DATA_LANDED_TASK = "churnops.quality.on_data_landed"


def unprocessed(runtime: Runtime, prefix: str = "") -> Iterator[tuple[ObjectRef, DataKind]]:
    """(object, kind) for every landing object under the kind prefixes with no done record."""
    bucket = runtime.settings.minio_landing_bucket
    with runtime.engine.connect() as conn:
        done = runtime.ledger.processed_keys(conn, DATA_LANDED_TASK)
    for kind_prefix, kind in KIND_PREFIXES.items():
        if prefix and not (kind_prefix.startswith(prefix) or prefix.startswith(kind_prefix)):
            continue
        for info in runtime.store.list_objects(
            bucket, prefix if prefix.startswith(kind_prefix) else kind_prefix
        ):
            ref = ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)
            if not info.key.endswith("/") and ref.versioned_uri not in done:
                yield ref, kind


def sweep(event: SweepRequested, runtime: Runtime) -> list[DataLanded]:
    return [
        event.derive(
            DataLanded,
            ref.versioned_uri,
            object=ref,
            kind=kind,
            source="sweep",
        )
        for ref, kind in unprocessed(runtime, event.prefix)
    ]
