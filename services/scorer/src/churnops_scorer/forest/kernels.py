"""The forest's compiled loop (numba, see `churnops_scorer.jit`): every tree's exit leaf for a
block of rows from the bit-vector tables, and the sums of those leaves' values and credits.

Written for any tree ensemble the tables hold (LightGBM's or XGBoost's); `tables.warm_up()`
compiles it ahead (the scorer image does, at build time).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from churnops_scorer.jit import LOCK, compiled

prange = range  # numba.prange once the loop is compiled (see churnops_scorer.jit)
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
    tree_word: np.ndarray,
    tree_shift: np.ndarray,
    tree_mask: np.ndarray,
    leaf_start: np.ndarray,
    leaf_values: np.ndarray,
    root_credit: np.ndarray,
    leaf_features: np.ndarray,
    leaf_credits: np.ndarray,
    sparse_credits: bool,
    zero_window: float,
    float32_inputs: bool,
    bits: int,
    all_ones: np.unsignedinteger,
    de_bruijn: np.unsignedinteger,
    shift: np.unsignedinteger,
    lowest_bit: np.ndarray,
    contributions: np.ndarray,
    margin: np.ndarray,
) -> None:
    """Per row: AND each used feature's interval row into W words, then per tree take the
    lowest set bit of its field (its exit leaf) and add that leaf's value and credits. See
    `tables` (and its `FieldLayout` for the fields).

    `float32_inputs`: each value is rounded to float32 as it is read (XGBoost compares float32)
    rather than the whole matrix copied twice beforehand. Every row of `contributions` is
    written whole, so it need not be zeroed.

    Credits come in two parts (see `tables._root_credits`). A root split's credit depends on
    its feature's interval alone, so the roots' credits are summed per table row and added once
    per feature (`root_credit`). The rest, per exit leaf, come either as a padded list of
    (feature, credit) (`sparse_credits`: trees of depth 2 or 3 leave one or two a leaf) or as
    the leaf's dense row over all features. Scattered adds cost more each than a dense row's
    vector adds, so the list pays only for very few credits a leaf: on 14 features and 300k
    rows, depth 2: 0.27 s listed vs 0.37 s dense; depth 3: 0.35 vs 0.41; depth 4: 0.45 vs
    0.42 (whence `tables.MAX_SPARSE_SLOTS`). On the champion `churnops train` made (438 trees
    of depth 2) the pass went from 1.66 s to 1.19 s per 1M rows (`bench_contributions.py`)."""
    n, n_features = x.shape
    width = table.shape[1]
    n_trees = tree_word.shape[0]
    slots = leaf_features.shape[1]
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
                value = np.float64(np.float32(x[i, f])) if float32_inputs else x[i, f]
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
                total[f] += root_credit[row]
            raw = 0.0
            for t in range(n_trees):
                w = tree_word[t]
                word = (words[w] >> tree_shift[t]) & tree_mask[t]
                while word == 0:  # only in trees of more leaves than a word has bits
                    w += 1
                    word = words[w]
                # numba widens 32-bit arithmetic to 64 bits: mask back to the word's width.
                lowest = word & (all_ones ^ (word - one))
                bit = lowest_bit[((lowest * de_bruijn) & all_ones) >> shift]
                leaf = leaf_start[t] + (w - tree_word[t]) * bits + bit
                raw += leaf_values[leaf]
                if sparse_credits:
                    for k in range(slots):
                        total[leaf_features[leaf, k]] += leaf_credits[leaf, k]
                else:
                    for f in range(n_features):
                        total[f] += leaf_credits[leaf, f]
            margin[i] = raw
            for f in range(n_features):
                contributions[i, f] = total[f]


def forest_contributions(*arrays: Any, words: Words) -> None:
    """`_forest_contributions` compiled; the arguments are the tables' arrays in its order."""
    kernel = compiled(_forest_contributions)
    *inputs, contributions, margin = arrays
    formats = (words.bits, words.all_ones, words.de_bruijn, words.shift, words.lowest_bit)
    with LOCK:
        kernel(*inputs, *formats, contributions, margin)
