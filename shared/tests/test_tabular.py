"""The one reader: the reader-agreement tests live here.

Arrow tables of text (`read_chunks`, the scorer's view) and pandas frames typed as
`pandas.read_csv` types each chunk (`iter_frames`, quality's, the trainer's and the monitor's
view), from the same parsing: exact chunking, quoted line breaks across blocks, short rows,
booleans, blanks and numbers stored as text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnops_common import tabular
from churnops_common.synthetic import generate
from churnops_common.tabular import iter_frames, read_chunks, read_frame

ID = "customer_id"


def test_parquet_row_groups_are_regrouped_into_exact_chunks(tmp_path: Path) -> None:
    table = pa.table({"x": np.arange(1000), "y": np.arange(1000) * 2.0})
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=130)
    chunks = list(read_chunks(path, 300, start=250, stop=910, columns=["y"]))
    assert [(offset, t.num_rows) for offset, t in chunks] == [
        (250, 50),
        (300, 300),
        (600, 300),
        (900, 10),
    ]
    assert all(t.column_names == ["y"] for _, t in chunks)
    assert pa.concat_tables([t for _, t in chunks]).column("y").to_pylist() == [
        2.0 * i for i in range(250, 910)
    ]


def test_quoted_line_breaks_survive_block_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tabular, "CSV_BLOCK_BYTES", 4096)  # many blocks in a small file
    frame = generate(2000, seed=14)
    frame["note"] = [f"line one\nline, two {i}" if i % 3 else "" for i in range(len(frame))]
    path = tmp_path / "notes.csv"
    frame.to_csv(path, index=False)
    chunks = list(read_chunks(path, 300))
    assert sum(t.num_rows for _, t in chunks) == 2000
    ids = pa.concat_tables([t for _, t in chunks]).column(ID).to_pylist()
    assert ids == frame[ID].tolist()
    notes = pd.concat(iter_frames(path, 300), ignore_index=True)["note"]
    assert notes.fillna("").tolist() == frame["note"].tolist()


def _agree(path: Path, chunk_rows: int) -> None:
    """Each chunk typed as pandas' own chunked reader types it, value for value."""
    ours = list(iter_frames(path, chunk_rows))
    theirs = list(pd.read_csv(path, chunksize=chunk_rows, low_memory=False))
    assert len(ours) == len(theirs)
    for mine, pandas_chunk in zip(ours, theirs, strict=True):
        pandas_chunk = pandas_chunk.reset_index(drop=True)
        assert list(mine.columns) == list(pandas_chunk.columns)
        for column in mine.columns:
            left, right = mine[column], pandas_chunk[column]
            assert left.dtype.kind == right.dtype.kind or (
                left.dtype.kind in "OUT" and right.dtype.kind in "OUT"
            ), (column, left.dtype, right.dtype)
            pd.testing.assert_series_equal(
                left.astype(object).where(left.notna(), None),
                right.astype(object).where(right.notna(), None),
                check_names=False,
                check_dtype=False,
            )


def test_typed_frames_agree_with_pandas(tmp_path: Path) -> None:
    lines = ["id,count,amount,flag,flag_gaps,total,segment,empty,mixed"]
    for i in range(3000):
        lines.append(
            ",".join(
                [
                    f"{i:05d}",
                    str(i % 7),
                    f"{i / 3:.4f}" if i % 11 else "",
                    "True" if i % 2 else "false",
                    "" if i % 5 == 0 else ("TRUE" if i % 2 else "False"),
                    " " if i % 97 == 0 else f"{i * 1.5}",
                    ["north", "south", "NA"][i % 3],
                    "",
                    "abc" if i == 2500 else str(i),
                ]
            )
        )
    path = tmp_path / "typed.csv"
    path.write_text("\n".join(lines) + "\n")
    _agree(path, 1000)  # the text in `mixed` sits in the third chunk only


def test_ids_stay_text_and_parquet_keeps_its_types(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("customer_id,x\n007,1\n010,2\n")
    frame = read_frame(path, text_columns=[ID])
    assert frame[ID].tolist() == ["007", "010"] and frame["x"].dtype == np.int64
    parquet = tmp_path / "typed.parquet"
    pd.DataFrame({"a": [1.5, None], "b": ["x", "y"]}).to_parquet(parquet)
    typed = read_frame(parquet)
    assert typed["a"].dtype == np.float64 and typed["b"].tolist() == ["x", "y"]


def _rows(chunks: list[tuple[int, pa.Table]]) -> list[tuple[int, dict[str, list[object]]]]:
    return [(offset, table.to_pydict()) for offset, table in chunks]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_read_whole_is_parsed_once_within_shared_reads(
    tmp_path: Path, parsed_files: list[Path], suffix: str
) -> None:
    frame = generate(5000, seed=3)
    path = tmp_path / f"batch{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    columns = [ID, "tenure_months", "contract"]
    expected = _rows(list(read_chunks(path, 700, start=100, stop=4100, columns=columns)))
    parsed = parsed_files
    parsed.clear()  # counted from here
    with tabular.shared_reads():
        whole = list(iter_frames(path, 2000))  # quality's view: every column
        again = _rows(list(read_chunks(path, 700, start=100, stop=4100, columns=columns)))
    assert parsed == [path]  # the second reader took its columns from memory
    assert again == expected  # the same chunks, offsets and values as a fresh parse
    assert sum(len(f) for f in whole) == len(frame)
    list(read_chunks(path, 700, columns=columns))  # after the block: parsed again
    assert parsed == [path, path]


def test_only_an_unchanged_file_read_whole_and_small_enough_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parsed_files: list[Path]
) -> None:
    path = tmp_path / "batch.csv"
    generate(3000, seed=4).to_csv(path, index=False)
    parsed = parsed_files
    with tabular.shared_reads():
        list(read_chunks(path, 500, columns=[ID]))  # some columns only: not kept
        next(read_chunks(path, 500))  # stopped after the first chunk: not kept
        list(read_chunks(path, 500))  # whole: kept
        generate(3000, seed=5).to_csv(path, index=False)  # rewritten: another file now
        changed = pa.concat_tables(t for _, t in read_chunks(path, 500, columns=[ID]))
    assert len(parsed) == 4
    assert changed.column(ID).to_pylist() == generate(3000, seed=5)[ID].tolist()
    monkeypatch.setattr(tabular, "KEEP_MAX_BYTES", path.stat().st_size // 2)
    with tabular.shared_reads():  # over the size kept: every reader parses
        list(read_chunks(path, 500))
        list(read_chunks(path, 500, columns=[ID]))
    assert len(parsed) == 6
