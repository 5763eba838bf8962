"""Reading landed tables (CSV or Parquet) whole or in bounded chunks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PARQUET_MAGIC = b"PAR1"
DEFAULT_CHUNK_ROWS = 100_000


def table_format(path: Path) -> str:
    """'parquet' or 'csv', by the file's magic bytes first and its suffix second."""
    with Path(path).open("rb") as handle:
        if handle.read(4) == PARQUET_MAGIC:
            return "parquet"
    return "csv"


def read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd

    if table_format(path) == "parquet":
        return pd.read_parquet(path, columns=columns)
    return pd.read_csv(path, usecols=columns, low_memory=False)


def iter_chunks(
    path: Path, chunk_rows: int = DEFAULT_CHUNK_ROWS, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of at most `chunk_rows` rows; memory stays bounded for any file size."""
    import pandas as pd

    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas()
        return
    yield from pd.read_csv(path, chunksize=chunk_rows, usecols=columns, low_memory=False)
