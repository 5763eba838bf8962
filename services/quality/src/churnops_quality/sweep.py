"""The sweep: landed objects that no quality run has finished, announced again.

A lost MinIO notification then only delays work: the next sweep finds the object (its
`bucket/key@etag` has no `done` ledger row for the DataLanded task) and re-emits DataLanded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from sqlalchemy import Connection, select

from churnops_common.bridge import KIND_PREFIXES
from churnops_common.db.tables import quality_runs
from churnops_common.events import DataKind, DataLanded, ObjectRef, SweepRequested
from churnops_common.routing import QUALITY, task_name
from churnops_common.runtime import Runtime

DATA_LANDED_TASK = task_name(QUALITY, DataLanded)


PAGE = 500  # listed objects checked against the ledger per query


def unprocessed(runtime: Runtime, prefix: str = "") -> Iterator[tuple[ObjectRef, DataKind]]:
    """(object, kind) for every landing object under the kind prefixes with no done record.

    Streams: the listing is read a page at a time and each page asks the ledger about its own
    keys only, so a sweep over millions of objects holds one page in memory.
    """
    bucket = runtime.settings.minio_landing_bucket
    days = runtime.settings.retention_ledger_days
    pruned_before = datetime.now(UTC) - timedelta(days=days) if days > 0 else None
    for kind_prefix, kind in KIND_PREFIXES.items():
        if prefix and not (kind_prefix.startswith(prefix) or prefix.startswith(kind_prefix)):
            continue
        listing = runtime.store.list_objects(
            bucket, prefix if prefix.startswith(kind_prefix) else kind_prefix
        )
        refs = (
            ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)
            for info in listing
            if not info.key.endswith("/")
        )
        while page := list(islice(refs, PAGE)):
            with runtime.engine.connect() as conn:
                done = runtime.ledger.done_among(
                    conn, DATA_LANDED_TASK, [ref.versioned_uri for ref in page]
                )
                if pruned_before is not None:
                    done |= _checked_among(conn, bucket, page, pruned_before)
            for ref in page:
                if ref.versioned_uri not in done:
                    yield ref, kind


def _checked_among(
    conn: Connection, bucket: str, page: list[ObjectRef], before: datetime
) -> set[str]:
    """Which of the page's objects were checked before the ledger's retention window: their
    ledger rows may be pruned, their quality runs (the audit trail) stay. Newer ones go by the
    ledger alone, so a run whose follow-ups failed is still swept again."""
    rows = conn.execute(
        select(quality_runs.c.object_key, quality_runs.c.etag).where(
            quality_runs.c.bucket == bucket,
            quality_runs.c.object_key.in_([ref.key for ref in page]),
            quality_runs.c.created_at < before,
        )
    )
    return {f"{bucket}/{key}@{etag}" for key, etag in rows}


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
