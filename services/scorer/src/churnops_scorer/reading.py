"""Reading a batch in bounded chunks (CSV or Parquet), whole or one row range of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from churnops_common.tabular import table_format


def read_chunks(
    path: Path, chunk_rows: int, id_column: str, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, pd.DataFrame]]:
    """(row offset, frame) pairs of at most `chunk_rows` rows, for rows [start, stop).

    Ids are read as text (no lost leading zeros). A row range is found by streaming past the
    rows before it: the parse is cheap next to scoring, and it stays correct for quoted fields
    with line breaks, which splitting the file by bytes would not.
    """
    offset = 0
    for frame in _raw_chunks(path, chunk_rows, id_column):
        end = offset + len(frame)
        if stop is not None and offset >= stop:
            return
        if end > start:
            lo, hi = max(start - offset, 0), len(frame) if stop is None else min(stop, end) - offset
            part = frame.iloc[lo:hi]
            yield offset + lo, part.reset_index(drop=True)
        offset = end


def _raw_chunks(path: Path, chunk_rows: int, id_column: str) -> Iterator[pd.DataFrame]:
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    yield from pd.read_csv(
        path, chunksize=chunk_rows, dtype={id_column: "string"}, low_memory=False
    )


def count_rows(path: Path, id_column: str) -> int:
    """Data rows in a table (Parquet from its footer; CSV by one streaming pass)."""
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return sum(len(f) for _, f in read_chunks(path, 200_000, id_column))


def columns_of(path: Path) -> list[str]:
    """The table's column names, without reading its rows."""
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    return list(pd.read_csv(path, nrows=0).columns)
