"""The Arrow feature matrix the compiled trees read, against the pipeline's own preprocessing:
the same numbers, edge values included (text in number columns, short rows, true/false
spellings, integers beyond double precision)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from churnops_common.ml.pipeline import TabularPreprocessor
from churnops_common.tabular import read_chunks
from churnops_scorer.features import FeatureMatrix, numbers
from churnops_scorer.path_attribution import _codes_matrix

from .conftest import ID


def test_feature_matrix_matches_the_pipelines_preprocessing() -> None:
    pre = TabularPreprocessor(
        numeric=["a", "b", "flag"],
        categorical={"c": ["1", "2", "x"], "d": ["no", "yes"], "gone": ["p", "q"]},
        names={k: k for k in ["a", "b", "flag", "c", "d", "gone"]},
    )
    table = pa.table(
        {
            "a": pa.array([" 1.5 ", "", "abc", None, "2e3", "-0"], pa.string()),
            "b": pa.array([1, 2, None, 4, 0, -3], pa.int64()),
            "flag": pa.array([True, False, None, True, True, False]),
            "c": pa.array([1, 2, 3, None, 1, 2], pa.int64()),  # categories read as numbers
            "d": pa.array([" yes", "no", "maybe", None, "yes ", ""], pa.string()),
            "extra": pa.array(list("abcdef")),
        }
    )
    ours = FeatureMatrix(pre)(table)
    theirs = _codes_matrix(pre.transform(table.to_pandas()))
    np.testing.assert_array_equal(ours, theirs)  # NaN-aware: NaN where theirs is NaN
    assert np.isnan(ours[:, -1]).all()  # a column the batch lacks
    assert ours[0, 0] == 1.5 and np.isnan(ours[2, 0]) and ours[0, 4] == 1  # " yes" -> "yes"


def test_short_rows_and_true_false_read_as_pandas_reads_them(tmp_path: Path) -> None:
    """Rows with fewer fields than the header (pandas fills them as missing) and true/false
    columns (pandas makes them booleans, so the trainer learned "True"/"False")."""
    rows = ["customer_id,paperless,monthly_charges"]
    rows += [f"{i},{'true' if i % 2 else 'FALSE'},{i}.5" for i in range(5000)]
    rows[4001] = "4000,true"  # a short row, far into the file
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(rows) + "\n")
    train = pd.read_csv(path, dtype={ID: str})
    pre = TabularPreprocessor.fit(train, exclude=(ID,))
    assert pre.categorical == {"paperless": ["False", "True"]}
    chunks = list(read_chunks(path, 700))
    assert sum(t.num_rows for _, t in chunks) == 5000
    table = pa.concat_tables([t for _, t in chunks])
    assert table.column(ID).to_pylist() == [str(i) for i in range(5000)]
    ours = FeatureMatrix(pre)(table)
    np.testing.assert_array_equal(ours, _codes_matrix(pre.transform(train)))
    assert np.isnan(ours[4000, 0]) and ours[4000, 1] == 1.0


def test_integers_beyond_double_precision_round_as_pandas_rounds() -> None:
    column = pa.chunked_array([pa.array([2**53 + 1, -(2**60) - 3, None], pa.int64())])
    expected = pd.Series([2**53 + 1, -(2**60) - 3, None], dtype="Int64").astype("float64")
    np.testing.assert_array_equal(
        numbers(column), expected.to_numpy(dtype=np.float64, na_value=np.nan)
    )
