"""The ids' hash: equal strings hash equal however Arrow holds them; distinct ones differ."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from churnops_quality.text_hash import text_hashes

TRICKY = ["", "a", "a\x00", "ab", "abcdefgh", "abcdefgh\x00", "abcdefghi", "ïd-é€😀", "x" * 100]


def test_distinct_strings_hash_apart() -> None:
    hashes = text_hashes(pa.array(TRICKY))
    assert hashes.dtype == np.uint64
    assert len(set(hashes.tolist())) == len(TRICKY)
    ids = [f"C{i:07d}" for i in range(100_000)]
    assert len(np.unique(text_hashes(pa.array(ids)))) == len(ids)


def test_the_same_strings_hash_the_same_in_any_layout() -> None:
    expected = text_hashes(pa.array(TRICKY))
    assert np.array_equal(text_hashes(pa.array(TRICKY, pa.large_string())), expected)
    sliced = pa.array(["before", *TRICKY, "after"]).slice(1, len(TRICKY))
    assert np.array_equal(text_hashes(sliced), expected)
    chunked = pa.chunked_array([TRICKY[:4], TRICKY[4:]])
    assert np.array_equal(text_hashes(chunked), expected)
    assert text_hashes(pa.chunked_array([], pa.string())).size == 0
