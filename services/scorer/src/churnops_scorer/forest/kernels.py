"""The scorer's compiled loops (numba): forest evaluation over bit-vector tables, and top-k.

Compiled on first use, not at import (numba's import and compile cost seconds, and a CLI command
that never scores should not pay them), and cached on disk where numba finds a writable place
(`NUMBA_CACHE_DIR`, else next to this file, else the user's cache folder), so a process after
the first loads them in a fraction of a second. Each call holds a process-wide lock: numba's
fallback threading layer aborts the process when two threads launch parallel loops at once.

`warm_up()` compiles them ahead (the scorer image does, at build time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

_LOCK = threading.Lock()
prange = range  # numba.prange once the kernels are compiled (see _compiled)
_COMPILED: dict[str, Callable[..., Any]] = {}
BLOCK_ROWS = 256  # rows per parallel task: scratch arrays are allocated once per block


class Words:
    """Bit-vector words of 32 or 64 bits (32 when every tree has at most 32 leaves: half the
    memory traffic). A lowest set bit's index comes from a de Bruijn sequence: multiplying the
    isolated bit by it puts a unique pattern in the top bits, looked up in `lowest_bit`."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.dtype = np.dtype(np.uint32 if bits == 32 else np.uint64)
        self.all_ones = self.dtype.type((1 << bits) - 1)
        sequence = 0x077C_B531 if bits == 32 else 0x03F7_9D71_B4CB_0A89
        self.de_bruijn = self.dtype.type(sequence)
        self.shift = self.dtype.type(bits - (bits.bit_length() - 1))
        self.lowest_bit = np.zeros(bits, dtype=np.int64)
        for bit in range(bits):
            self.lowest_bit[((sequence << bit) & ((1 << bits) - 1)) >> int(self.shift)] = bit

    @classmethod
    def for_leaves(cls, most_leaves: int) -> Words:
        return cls(32 if most_leaves <= 32 else 64)


def _forest_contributions(  # pragma: no cover - runs compiled; covered through its wrapper
    x: np.ndarray,
    table: np.ndarray,
    row_start: np.ndarray,
    kinds: np.ndarray,
    n_categories: np.ndarray,
    cuts: np.ndarray,
    cut_start: np.ndarray,
    word_start: np.ndarray,
    leaf_start: np.ndarray,
    leaf_values: np.ndarray,
    credits: np.ndarray,
    zero_window: float,
    bits: int,
    all_ones: np.unsignedinteger,
    de_bruijn: np.unsignedinteger,
    shift: np.unsignedinteger,
    lowest_bit: np.ndarray,
    contributions: np.ndarray,
    margin: np.ndarray,
) -> None:
    """Per row: AND each used feature's interval row into W words, then per tree take the
    lowest set bit (its exit leaf) and add that leaf's value and credits. See forest_tables."""
    n, n_features = x.shape
    width = table.shape[1]
    n_trees = word_start.shape[0] - 1
    one = all_ones & (all_ones >> (bits - 1))  # 1, in the words' type
    blocks = (n + BLOCK_ROWS - 1) // BLOCK_ROWS
    for block in prange(blocks):
        words = np.empty(width, dtype=table.dtype)  # scratch, once per block of rows
        total = np.empty(n_features)
        for i in range(block * BLOCK_ROWS, min(n, (block + 1) * BLOCK_ROWS)):
            for w in range(width):
                words[w] = all_ones
            for f in range(n_features):
                total[f] = 0.0
            for f in range(n_features):
                kind = kinds[f]
                if kind == 0:
                    continue
                value = x[i, f]
                if kind == 2:  # categorical: a row per code, the last for NaN, negative, unknown
                    k = n_categories[f]
                    code = k if (value != value or value < 0.0 or value >= k) else np.int64(value)
                    row = row_start[f] + code
                else:  # numeric: a row per interval between thresholds, then zero, then NaN
                    lo, hi = cut_start[f], cut_start[f + 1]
                    if value != value:
                        row = row_start[f] + (hi - lo) + 2
                    elif -zero_window <= value <= zero_window:
                        row = row_start[f] + (hi - lo) + 1
                    else:
                        row = row_start[f] + np.searchsorted(cuts[lo:hi], value)
                for w in range(width):
                    words[w] &= table[row, w]
            raw = 0.0
            for t in range(n_trees):
                w = word_start[t]
                while words[w] == 0:  # only in trees of more leaves than a word has bits
                    w += 1
                word = words[w]
                # numba widens 32-bit arithmetic to 64 bits: mask back to the word's width.
                lowest = word & (all_ones ^ (word - one))
                bit = lowest_bit[((lowest * de_bruijn) & all_ones) >> shift]
                leaf = leaf_start[t] + (w - word_start[t]) * bits + bit
                raw += leaf_values[leaf]
                for f in range(n_features):
                    total[f] += credits[leaf, f]
            margin[i] = raw
            for f in range(n_features):
                contributions[i, f] = total[f]


def _top_k(  # pragma: no cover - runs compiled; covered through its wrapper
    values: np.ndarray, k: int, index: np.ndarray, top: np.ndarray
) -> None:
    """Per row, the k largest values and their columns, largest first; ties keep column order."""
    n, width = values.shape
    for i in prange(n):
        filled = 0
        for c in range(width):
            v = values[i, c]
            if filled == k and not v > top[i, k - 1]:
                continue
            j = filled if filled < k else k - 1
            while j > 0 and v > top[i, j - 1]:  # strictly greater: an equal value stays behind
                top[i, j] = top[i, j - 1]
                index[i, j] = index[i, j - 1]
                j -= 1
            top[i, j] = v
            index[i, j] = c
            if filled < k:
                filled += 1


def _compiled(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    global prange
    if name not in _COMPILED:
        import numba

        prange = numba.prange

        try:
            _COMPILED[name] = numba.njit(parallel=True, nogil=True, cache=True)(function)
        except RuntimeError:  # no writable cache location: compile in this process only
            _COMPILED[name] = numba.njit(parallel=True, nogil=True)(function)
    return _COMPILED[name]


def forest_contributions(*arrays: Any, words: Words) -> None:
    """`_forest_contributions` compiled; the arguments are forest_tables' arrays in its order."""
    kernel = _compiled("forest_contributions", _forest_contributions)
    *inputs, contributions, margin = arrays
    formats = (words.bits, words.all_ones, words.de_bruijn, words.shift, words.lowest_bit)
    with _LOCK:
        kernel(*inputs, *formats, contributions, margin)


def top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of each row's k largest values, largest first; k <= values' width."""
    n = len(values)
    index = np.zeros((n, k), dtype=np.int64)
    top = np.zeros((n, k))
    if k:
        kernel = _compiled("top_k", _top_k)
        with _LOCK:
            kernel(np.ascontiguousarray(values, dtype=np.float64), k, index, top)
    return index, top


def warm_up() -> None:
    """Compile (or load from the cache) every kernel on a tiny input."""
    from churnops_scorer.forest.tables import ForestTables
    from churnops_scorer.forest.trees import Rule, Split, Tree

    split = Split(Rule(0, False, 0.5, frozenset(), nan_left=True, zero_left=True), 0, 1)
    small = Tree([split], np.array([-1.0, 1.0]), np.array([0, 1]), np.zeros((2, 1)), 0.0)
    leaves = 33  # a tree too wide for 32-bit words: compiles the 64-bit variant too
    wide = Tree([split], np.zeros(leaves), np.arange(leaves), np.zeros((leaves, 1)), 0.0)
    for trees in ([small], [wide]):
        values, _ = ForestTables.build(trees, 1, {}).contributions(np.array([[0.0], [1.0]]))
    top_k(values, 1)
