"""The one reader of landed tables (CSV or Parquet), for every stage and command.

CSV is parsed by Arrow's multithreaded reader, only the columns asked for, and every column as
text first: a type guessed from a big file's first block could not hold a later block (a blank
in a number column). Missing values are spelt as pandas spells them, so ids and categories read
the same as with `pandas.read_csv`; a row with fewer fields than the header is filled as pandas
fills it; quoted values may hold line breaks across blocks.

Two views of the same reading:
- `read_chunks`: Arrow tables of text, a fixed number of rows each (the scorer parses numbers
  per column as its pipeline does);
- `iter_frames` / `read_frame`: pandas frames typed as `pandas.read_csv` types them (integers,
  floats, booleans, text), for the stages whose code is written against pandas.

Within `shared_reads()` (embedded mode: several stages in one process), a file read whole, all
its columns, is kept in memory for the next reader of the same unchanged file: quality's check
parses a batch and the scorer's pass then takes its columns from memory, one parse for both.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

PARQUET_MAGIC = b"PAR1"
DEFAULT_CHUNK_ROWS = 100_000
# pandas reads a column of only these (and no blanks) as booleans.
_PANDAS_TRUE = frozenset({"True", "TRUE", "true"})
_PANDAS_FALSE = frozenset({"False", "FALSE", "false"})
# Rows tried before casting a whole text column to a number type.
_PROBE_ROWS = 256


def table_format(path: Path) -> str:
    """'parquet' or 'csv', by the file's magic bytes first and its suffix second."""
    with Path(path).open("rb") as handle:
        if handle.read(4) == PARQUET_MAGIC:
            return "parquet"
    return "csv"


def read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The whole table as one typed pandas frame."""
    return read_frame(path, columns)


def iter_chunks(
    path: Path, chunk_rows: int = DEFAULT_CHUNK_ROWS, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Typed pandas frames of at most `chunk_rows` rows; memory stays bounded for any size."""
    return iter_frames(path, chunk_rows, columns)


def iter_frames(
    path: Path,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    columns: Collection[str] | None = None,
    text_columns: Collection[str] = (),
) -> Iterator[pd.DataFrame]:
    """pandas frames typed as `pandas.read_csv` would type each chunk (Parquet keeps its
    own types); `text_columns` (ids) stay text, leading zeros and all."""
    parquet = table_format(path) == "parquet"
    for _, table in read_chunks(path, chunk_rows, columns=columns):
        yield _typed(table, text_columns, parquet)


def read_frame(
    path: Path, columns: Collection[str] | None = None, text_columns: Collection[str] = ()
) -> pd.DataFrame:
    import pandas as pd

    frames = list(iter_frames(path, 1 << 20, columns, text_columns))
    if len(frames) == 1:
        return frames[0]
    if not frames:
        return pd.DataFrame(columns=list(columns_of(path)))
    return pd.concat(frames, ignore_index=True)


def _typed(table: pa.Table, text_columns: Collection[str], parquet: bool) -> pd.DataFrame:
    import pandas as pd

    data = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in text_columns:
            data[name] = column.to_pandas().astype("string")
        elif parquet:
            data[name] = column.to_pandas()
        else:
            data[name] = _typed_text(column)
    return pd.DataFrame(data, columns=table.column_names)


def _typed_text(column: pa.ChunkedArray) -> pd.Series:
    """A text column as pandas would type it: integers, then floats, then booleans, else text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    series: pd.Series
    if column.null_count == len(column):
        series = column.cast(pa.float64()).to_pandas()
        return series
    probe = column.slice(0, _PROBE_ROWS)
    for number_type in (pa.int64(), pa.float64()):
        try:
            # A cast fails when any value fails: a failing head decides it at once, where a
            # failed cast of the whole column parses every row first (most of a chunk's time).
            pc.cast(probe, number_type)
            series = pc.cast(column, number_type).to_pandas()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return series
    distinct = set(pc.unique(column.drop_null()).to_pylist())
    if distinct <= _PANDAS_TRUE | _PANDAS_FALSE:
        series = pc.is_in(column, value_set=pa.array(sorted(_PANDAS_TRUE))).to_pandas()
        if column.null_count:  # pandas keeps True/False objects beside NaN
            return series.astype(object).where(column.is_valid().to_pandas())
        return series.astype(bool)
    series = column.to_pandas()
    return series


CSV_BLOCK_BYTES = 1 << 20  # bigger blocks read no faster, and the reader holds several ahead


def read_chunks(
    path: Path,
    chunk_rows: int,
    start: int = 0,
    stop: int | None = None,
    columns: Collection[str] | None = None,
) -> Iterator[tuple[int, pa.Table]]:
    """(row offset, table) pairs of `chunk_rows` rows (the last may be shorter) for rows
    [start, stop), with the file's `columns` that exist (None: all of them), in file order.

    A row range is found by streaming past the rows before it: parsing is cheap next to
    scoring, and it stays correct for quoted fields with line breaks, which splitting the file
    by bytes would not.
    """
    offset = 0
    for table in _fixed_size(_batches(path, chunk_rows, columns), chunk_rows):
        end = offset + table.num_rows
        if stop is not None and offset >= stop:
            return
        if end > start:
            lo = max(start - offset, 0)
            hi = table.num_rows if stop is None else min(stop, end) - offset
            yield offset + lo, table.slice(lo, hi - lo)
        offset = end


# The most a kept read may hold in memory (Arrow's bytes: a CSV's text about doubles with its
# offsets; a Parquet file decodes to several times its size); a bigger read is not kept.
KEEP_MAX_BYTES = 512 * 2**20


@dataclass
class _KeptRead:
    """The batches of the last file read whole within `shared_reads`, and what it was."""

    # Device, inode, size, mtime: the same unchanged file. Not ctime: pinning a version by a
    # hard link (the object store's local_path) changes it, not the content.
    identity: tuple[int, ...] = ()
    batches: list[pa.RecordBatch] = field(default_factory=list)


_kept: _KeptRead | None = None  # None: reads are not kept (outside `shared_reads`)


@contextmanager
def shared_reads() -> Iterator[None]:
    """Within the block, keep the last file read whole (all columns, at most `KEEP_MAX_BYTES`
    in memory) for the next reader of that same file. For one thread of one process that runs
    several stages over one file; the kept batches go at the end of the outermost block (an
    inner block shares it: a command's stages may each run their own platform)."""
    global _kept
    if _kept is not None:
        yield
        return
    _kept = _KeptRead()
    try:
        yield
    finally:
        _kept = None


def _identity(path: Path) -> tuple[int, ...]:
    stat = os.stat(path)
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _batches(
    path: Path, chunk_rows: int, columns: Collection[str] | None
) -> Iterator[pa.RecordBatch]:
    """The file's batches of text columns: from memory when the file was kept whole, else
    parsed (and kept, when inside `shared_reads`, it is read whole and small enough)."""
    names = columns_of(path)
    chosen = set(columns) if columns is not None else None
    wanted = names if chosen is None else [c for c in names if c in chosen]
    kept = _kept
    if kept is None:
        yield from _parsed(path, chunk_rows, wanted)
        return
    identity = _identity(path)
    if kept.identity == identity:
        for batch in kept.batches:
            yield batch.select(wanted)
        return
    keep = columns is None
    kept.identity, kept.batches = (), []  # the previous file's batches go now
    batches: list[pa.RecordBatch] = []
    held = 0
    for batch in _parsed(path, chunk_rows, wanted):
        held += batch.nbytes
        if keep and held > KEEP_MAX_BYTES:
            keep, batches = False, []
        if keep:
            batches.append(batch)
        yield batch
    if keep:  # only a read that reached the end is kept
        kept.identity, kept.batches = identity, batches


def _parsed(path: Path, chunk_rows: int, wanted: list[str]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if table_format(path) == "parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=wanted)
        return
    produced = 0
    try:
        for batch in _arrow_csv(path, wanted):
            yield batch
            produced += batch.num_rows
    except pa.ArrowInvalid as exc:
        if not _short_row(str(exc)):
            raise
        # A row with fewer fields than the header: pandas fills them as missing; Arrow
        # refuses. Go on with pandas from this row. (A row with more fields is an error.)
        yield from _pandas_csv(path, wanted, chunk_rows, skip=produced)


def _short_row(message: str) -> bool:
    """Arrow's "Expected N columns, got M" with M < N: a short row."""
    import re

    found = re.search(r"Expected (\d+) columns, got (\d+)", message)
    return found is not None and int(found.group(2)) < int(found.group(1))


def _arrow_csv(path: Path, wanted: list[str]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    from pandas._libs.parsers import STR_NA_VALUES

    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        # Quoted values may hold line breaks (free-text columns): blocks must not split them.
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types=dict.fromkeys(wanted, pa.string()),
            include_columns=wanted,
            null_values=sorted(STR_NA_VALUES),
            strings_can_be_null=True,
        ),
    )
    yield from reader


def _pandas_csv(
    path: Path, wanted: list[str], chunk_rows: int, skip: int
) -> Iterator[pa.RecordBatch]:
    """The same text columns through pandas' reader, from data row `skip` on."""
    import pandas as pd
    import pyarrow as pa

    seen = 0
    for frame in pd.read_csv(
        path, chunksize=chunk_rows, usecols=wanted, dtype=str, encoding="utf-8-sig"
    ):
        part = frame.iloc[max(skip - seen, 0) :]
        seen += len(frame)
        if len(part):
            table = pa.Table.from_pandas(part, preserve_index=False)
            yield from table.cast(pa.schema([(c, pa.string()) for c in wanted])).to_batches()


def _fixed_size(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Regroup batches of any size into tables of exactly `rows` rows, and a shorter last one."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    have = 0
    for batch in batches:
        pending.append(batch)
        have += batch.num_rows
        while have >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            pending = table.slice(rows).to_batches()
            have -= rows
    if have:
        yield pa.Table.from_batches(pending)


def count_rows(path: Path) -> int:
    """Data rows in a table (Parquet from its footer; CSV by one streaming pass)."""
    import pyarrow.parquet as pq

    if table_format(path) == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    first = columns_of(path)[:1]
    return sum(t.num_rows for _, t in read_chunks(path, 1 << 20, columns=first))


def columns_of(path: Path) -> list[str]:
    """The table's column names, without reading its rows (CSV: the header)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if table_format(path) == "parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    # Opening the stream parses the header (and the first block, whose ragged rows are
    # skipped here: only the names matter), as read_chunks will.
    skip_ragged = pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda _: "skip")
    return list(pcsv.open_csv(path, parse_options=skip_ragged).schema.names)
