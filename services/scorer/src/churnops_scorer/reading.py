"""Reading a batch as Arrow tables of a fixed number of rows (CSV or Parquet), whole or a range.

CSV is parsed by Arrow's multithreaded reader, only the columns scoring needs, and every column
as text: a type guessed from a big file's first block could not hold a later block (a blank in
a number column), and numbers are parsed per column afterwards, as the pipeline does (see
`features`). Missing values are spelt as pandas spells them, so ids and categories read the same
as with `pandas.read_csv`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from pandas._libs.parsers import STR_NA_VALUES

from churnops_common.tabular import table_format

CSV_BLOCK_BYTES = 1 << 20  # bigger blocks read no faster, and the reader holds several ahead
_NULLS = sorted(STR_NA_VALUES)


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


def _batches(
    path: Path, chunk_rows: int, columns: Collection[str] | None
) -> Iterator[pa.RecordBatch]:
    names = columns_of(path)
    wanted = names if columns is None else [c for c in names if c in set(columns)]
    if table_format(path) == "parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=wanted)
        return
    produced = 0
    try:
        for batch in _arrow_csv(path, wanted):
            yield batch
            produced += batch.num_rows
    except pa.ArrowInvalid as exc:
        if "columns, got" not in str(exc):
            raise
        # A row with fewer fields than the header: pandas (which the quality stage read the
        # file with) fills them as missing; Arrow refuses. Go on with pandas from this row.
        yield from _pandas_csv(path, wanted, chunk_rows, skip=produced)


def _arrow_csv(path: Path, wanted: list[str]) -> Iterator[pa.RecordBatch]:
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        # Quoted values may hold line breaks (free-text columns): blocks must not split them.
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types=dict.fromkeys(wanted, pa.string()),
            include_columns=wanted,
            null_values=_NULLS,
            strings_can_be_null=True,
        ),
    )
    yield from reader


def _pandas_csv(
    path: Path, wanted: list[str], chunk_rows: int, skip: int
) -> Iterator[pa.RecordBatch]:
    """The same text columns through pandas' reader, from data row `skip` on."""
    import pandas as pd

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
    if table_format(path) == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    first = columns_of(path)[:1]
    return sum(t.num_rows for _, t in read_chunks(path, 1 << 20, columns=first))


def columns_of(path: Path) -> list[str]:
    """The table's column names, without reading its rows (CSV: the header)."""
    if table_format(path) == "parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    # Opening the stream parses the header (and the first block, whose ragged rows are
    # skipped here: only the names matter), as read_chunks will.
    skip_ragged = pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda _: "skip")
    return list(pcsv.open_csv(path, parse_options=skip_ragged).schema.names)
