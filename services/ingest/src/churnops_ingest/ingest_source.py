"""The ingest use case: pull one source for one logical date into `landing/<kind>/<source>/`.

The object's key is fixed by the source, its definition (query or API request) and the logical
date. A re-run that gets the same result writes nothing (`created` is False) and points at the
object that is there; a re-run that gets another result is refused, never an overwrite: the
landed snapshot may already have been scored or trained on.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from churnops_common.errors import PermanentError
from churnops_common.events import DataKind, DataLanded, Event, ObjectRef
from churnops_common.settings import Settings
from churnops_common.storage import ObjectStore
from churnops_ingest.http_source import HttpOptions, api_batches
from churnops_ingest.snapshot import (
    SnapshotFile,
    assemble,
    read_fingerprint,
    snapshot_key,
    snapshot_name,
    write_parts,
)
from churnops_ingest.sources import Source, SourceConfigError
from churnops_ingest.sql_source import query_batches

log = logging.getLogger(__name__)

PARQUET = "application/vnd.apache.parquet"


class EmptyResult(PermanentError):
    """The source returned no rows: nothing is landed (an empty file would only be rejected)."""


class SnapshotChanged(PermanentError):
    """The snapshot for this source and date exists and holds another result."""


@dataclass(frozen=True)
class IngestResult:
    source: str
    kind: DataKind
    snapshot: str
    object: ObjectRef
    rows: int
    created: bool
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "snapshot": self.snapshot,
            "object": self.object.uri,
            "etag": self.object.etag,
            "rows": self.rows,
            "created": self.created,
            "fingerprint": self.fingerprint,
        }


def ingest(
    store: ObjectStore,
    settings: Settings,
    name: str,
    source: Source,
    logical_date: date,
    on_rows: Callable[[int], None] | None = None,
) -> IngestResult:
    snapshot = snapshot_name(name, _definition(source), logical_date)
    bucket, key = settings.minio_landing_bucket, snapshot_key(source.kind, name, snapshot)
    with tempfile.TemporaryDirectory(prefix="churnops-ingest-") as tmp:
        folder = Path(tmp)
        batches = _batches(settings, name, source, logical_date)
        parts, schema = write_parts(batches, folder, on_rows)
        if schema is None:
            raise EmptyResult(
                f"source {name!r} returned no rows for {logical_date.isoformat()}: nothing landed"
            )
        written = assemble(parts, schema, folder / "snapshot.parquet", snapshot)
        existing = store.stat(bucket, key)
        if existing is not None:
            _require_same(store, bucket, key, written, name, logical_date)
            ref = ObjectRef(bucket=bucket, key=key, etag=existing.etag, size=existing.size)
            log.info("%s: %s already holds this result (%d rows)", name, ref.uri, written.rows)
            return IngestResult(
                name, source.kind, snapshot, ref, written.rows, False, written.fingerprint
            )
        info = store.put_file(bucket, key, written.path, PARQUET)
    ref = ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)
    log.info("%s: landed %d rows as %s", name, written.rows, ref.uri)
    return IngestResult(name, source.kind, snapshot, ref, written.rows, True, written.fingerprint)


def landed_event(result: IngestResult, cause: Event | None = None) -> DataLanded:
    """The DataLanded that announces the snapshot, as MinIO's notification would.

    Its idempotency key is the object's `bucket/key@etag`, like the notification's: whichever
    arrives second is dropped by quality's ledger, and a re-run announces nothing new.
    """
    fields: dict[str, Any] = {
        "object": result.object,
        "kind": result.kind,
        "content_type": PARQUET,
        "source": "ingest",
    }
    if cause is not None:
        return cause.derive(DataLanded, result.object.versioned_uri, **fields)
    return DataLanded.start_chain(result.object.versioned_uri, **fields)


def _definition(source: Source) -> str:
    """What the snapshot's name depends on besides the source and date (never credentials)."""
    if source.sql is not None:
        return f"{source.kind}\nsql\n{source.sql.query.strip()}"
    assert source.http is not None
    http = source.http
    return f"{source.kind}\nhttp\n{http.model_dump_json(exclude={'token_env'})}"


def _batches(
    settings: Settings, name: str, source: Source, logical_date: date
) -> Iterator[pa.Table]:
    if source.sql is not None:
        url = source.sql.resolve_url()
        return query_batches(url, source.sql.query, logical_date, settings.ingest_batch_rows, name)
    assert source.http is not None
    options = HttpOptions(
        token=_token(settings, source.http.token_env),
        timeout_s=settings.ingest_http_timeout_s,
        retries=settings.ingest_http_retries,
        backoff_s=settings.ingest_http_backoff_s,
        batch_rows=settings.ingest_batch_rows,
    )
    return api_batches(source.http, logical_date, options, name)


def _token(settings: Settings, token_env: str | None) -> str:
    if token_env is None:
        return settings.ingest_api_token.get_secret_value()
    token = os.environ.get(token_env, "")
    if not token:
        raise SourceConfigError(f"environment variable {token_env} (the API token) is unset")
    return token


def _require_same(
    store: ObjectStore, bucket: str, key: str, written: SnapshotFile, name: str, logical_date: date
) -> None:
    with store.local_path(bucket, key) as path:
        landed = read_fingerprint(path)
    if landed is not None and landed[0] == written.fingerprint:
        return
    before = f"{landed[1]} rows" if landed else "a file not written by ingest"
    raise SnapshotChanged(
        f"source {name!r} for {logical_date.isoformat()} already landed as s3://{bucket}/{key}"
        f" ({before}), and this run returned another result ({written.rows} rows): a snapshot is"
        " never overwritten; ingest another --date, or remove the object to land it again"
    )
