"""Snapshots: where an ingest lands, and a streamed Parquet file with a content fingerprint.

Rows arrive in batches and are spilled to Parquet parts as they come, so memory holds one batch
whatever the result's size. A column's type can only be known once every batch has been seen
(all nulls in the first batch, integers in a later one), so the parts are unified at the end and
copied, one at a time, into the snapshot file.

The fingerprint is order-independent (a warehouse may return the same rows in another order on
each run: Postgres' synchronized scans start a big table mid-way): the sum, modulo 2**64, of a
64-bit hash of every row, under two hash keys, with the row count and the schema. It says "the
same result" or "another result"; it is not a security hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churnops_common.errors import PermanentError
from churnops_common.events import DataKind, stable_id

FINGERPRINT_KEY = b"churnops.ingest.fingerprint"
ROWS_KEY = b"churnops.ingest.rows"
SNAPSHOT_KEY = b"churnops.ingest.snapshot"
_HASH_KEYS = ("churnops-ingestA", "churnops-ingestB")  # hash_pandas_object: 16 bytes


class SchemaConflict(PermanentError):
    """A column changes type between batches of one result (e.g. numbers, then text)."""


def snapshot_name(source: str, definition: str, logical_date: date) -> str:
    """`<date>-<hash>`: the same source, query and logical date always give the same name."""
    digest = stable_id("ingest-snapshot", source, definition, logical_date.isoformat())
    return f"{logical_date.isoformat()}-{digest.replace('-', '')[:12]}"


def snapshot_key(kind: DataKind, source: str, snapshot: str) -> str:
    """The landing key; its first folder is the kind, as for any dropped file."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", source)
    return f"{kind}/{safe}/{snapshot}.parquet"


@dataclass(frozen=True)
class SnapshotFile:
    path: Path
    rows: int
    fingerprint: str
    columns: tuple[str, ...]


class _Fingerprint:
    def __init__(self) -> None:
        self.sums = [np.uint64(0), np.uint64(0)]
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        frame = table.to_pandas()
        for i, key in enumerate(_HASH_KEYS):
            hashes = pd.util.hash_pandas_object(frame, index=False, hash_key=key).to_numpy()
            with np.errstate(over="ignore"):
                self.sums[i] = np.uint64(self.sums[i] + hashes.sum(dtype=np.uint64))
        self.rows += table.num_rows

    def hexdigest(self, schema: pa.Schema) -> str:
        fields = ";".join(f"{f.name}:{f.type}" for f in schema)
        text = f"{fields}|{self.rows}|{int(self.sums[0]):016x}{int(self.sums[1]):016x}"
        return hashlib.sha256(text.encode()).hexdigest()


def write_parts(
    batches: Iterable[pa.Table], folder: Path, on_rows: Callable[[int], None] | None = None
) -> tuple[list[Path], pa.Schema | None]:
    """Spill each non-empty batch to its own part; the schema every part can be cast to.

    `on_rows` hears each batch's row count (a progress display)."""
    parts: list[Path] = []
    schema: pa.Schema | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        try:
            schema = (
                batch.schema
                if schema is None
                else pa.unify_schemas([schema, batch.schema], promote_options="permissive")
            )
        except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
            raise SchemaConflict(
                f"a column changes type between rows of the result: {exc}"
            ) from exc
        part = folder / f"part-{len(parts):05d}.parquet"
        pq.write_table(batch, part)
        parts.append(part)
        if on_rows is not None:
            on_rows(batch.num_rows)
    return parts, schema


def assemble(parts: list[Path], schema: pa.Schema, out: Path, snapshot: str) -> SnapshotFile:
    """Copy the parts into one Parquet file, cast to the unified schema, fingerprinting them.

    Nulls-only columns (no batch ever said their type) are written as text.
    """
    schema = pa.schema(
        [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema]
    )
    fingerprint = _Fingerprint()
    with pq.ParquetWriter(out, schema) as writer:
        for part in parts:
            table = _cast(pq.read_table(part), schema)
            fingerprint.add(table)
            writer.write_table(table)
            part.unlink()
        digest = fingerprint.hexdigest(schema)
        writer.add_key_value_metadata(
            {
                FINGERPRINT_KEY: digest.encode(),
                ROWS_KEY: str(fingerprint.rows).encode(),
                SNAPSHOT_KEY: snapshot.encode(),
            }
        )
    return SnapshotFile(out, fingerprint.rows, digest, tuple(schema.names))


def _cast(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def read_fingerprint(path: Path) -> tuple[str, int] | None:
    """(fingerprint, rows) of a landed snapshot, or None for a file written some other way."""
    metadata = pq.read_metadata(path).metadata or {}
    if FINGERPRINT_KEY not in metadata:
        return None
    return metadata[FINGERPRINT_KEY].decode(), int(metadata.get(ROWS_KEY, b"-1"))


def arrow_batch(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> pa.Table:
    """A table from row tuples, column by column (faster and leaner than dicts per row).

    Decimals become float64 (what a model reads); values Arrow cannot type (UUIDs, IP addresses,
    mixed types in one column) become text.
    """
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    arrays = [_array(list(column)) for column in values]
    return pa.Table.from_arrays(arrays, names=list(columns))


def _array(values: list[object]) -> pa.Array:
    try:
        array = pa.array(values, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    if pa.types.is_decimal(array.type):
        return array.cast(pa.float64())
    return array
