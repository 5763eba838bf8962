"""A tree ensemble (LightGBM's or XGBoost's) compiled into bit-vector tables: every tree's exit
leaf for a row at once.

QuickScorer's observation (Lucchese et al., SIGIR 2015): number each tree's leaves left to right;
a split that sends a row right rules out its left subtree's leaves, and the leftmost leaf that no
split has ruled out is the row's exit leaf. Which splits on a feature a row fails depends only on
the interval between that feature's thresholds its value falls in (or, for a categorical feature,
on its category), so the AND of those splits' masks is precomputed per interval: one table row
of W 32- or 64-bit words. Scoring a row is then one binary search and one W-word AND per
feature, then one bit scan per tree, with no branch on the data.

The exit leaves give the margin (the model's own leaf values, added in its own order: the same
number, to the last bit) and the decision-path contributions (each leaf's credits, see
`trees`). The package's docstring works this through on a three-leaf tree.

Each tree owns a field of the row: a power of two of bits at least its leaf count, several
fields to a word (eight trees of depth 2 share one 32-bit word), or whole words for a tree of
more leaves than a word has bits (see `FieldLayout`). Packing shallow trees divides W, and with
it the tables' size and the per-feature AND, by up to the word's bits over the leaves: on 438
trees of depth 2, 55 words a row instead of 438, and the pass 1.15x faster.

The credits' sum is split the same way: a root split's credit depends only on the interval its
feature falls in, so the roots' credits are summed per table row (one add per feature, not per
tree), and each leaf keeps only the credits of the splits below its root: as a short list of
(feature, credit) when no leaf has more than `MAX_SPARSE_SLOTS` of them (trees of depth 2 or
3), else as a dense row. On 438 trees of depth 2 the pass went 1.4x faster again.

The tables cost (intervals over all features) x W words: a few MiB for a typical model
(200 trees of 31 leaves, 14 features: 1083 x 200 32-bit words, 0.8 MiB). `build` raises
`TooLarge` for a model whose tables would pass `MAX_TABLE_BYTES`; the caller then scores it
with the model's own library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from churnops_scorer.forest import kernels
from churnops_scorer.forest.lightgbm_trees import ZERO_THRESHOLD
from churnops_scorer.forest.trees import Rule, Split, Tree

MAX_TABLE_BYTES = 256 * 1024 * 1024
MAX_SPARSE_SLOTS = 2  # more credits a leaf than this: a dense row adds them faster (kernels)
UNUSED, NUMERIC, CATEGORICAL = 0, 1, 2


class TooLarge(ValueError):
    """The tables would not fit the memory budget."""


@dataclass(frozen=True)
class ForestTables:
    table: np.ndarray  # (rows, W) words: the AND mask per feature interval
    words: kernels.Words  # 32- or 64-bit words
    row_start: np.ndarray  # per feature: its first table row
    kinds: np.ndarray  # per feature: UNUSED, NUMERIC or CATEGORICAL
    n_categories: np.ndarray  # per categorical feature: codes with a row of their own
    cuts: np.ndarray  # numeric features' sorted thresholds, concatenated
    cut_start: np.ndarray  # per feature: [cut_start[f], cut_start[f + 1]) in `cuts`
    fields: FieldLayout  # per tree: where its leaves' bits are in a table row
    leaf_start: np.ndarray  # per tree: its first global (in-order) leaf number
    leaf_values: np.ndarray  # per global leaf
    root_credit: np.ndarray  # per table row: its feature's credit from the roots split on it
    leaf_features: np.ndarray  # (global leaves, K): the features of a leaf's other credits
    leaf_credits: np.ndarray  # (global leaves, K): those credits, padded with zeros
    sparse_credits: bool  # leaf_features/leaf_credits as above; else dense: (leaves, features)
    bias: float  # base margin + the trees' root values: credits + bias = margin
    base_margin: float = 0.0  # added to the leaf values (XGBoost's base score)
    zero_window: float = ZERO_THRESHOLD  # |x| <= this is read as zero (LightGBM); XGBoost: 0
    float32_inputs: bool = False  # XGBoost compares float32 values: the kernel rounds inputs

    @classmethod
    def build(
        cls,
        trees: list[Tree],
        n_features: int,
        n_categories: dict[int, int],
        base_margin: float = 0.0,
        float32_inputs: bool = False,
        zero_window: float = ZERO_THRESHOLD,
    ) -> ForestTables:
        """`n_categories`: per categorical feature, how many category codes the input can have."""
        words = kernels.Words.for_leaves(max((t.leaves for t in trees), default=1))
        fields = FieldLayout.pack([t.leaves for t in trees], words)
        width = fields.width
        by_feature: list[list[tuple[int, Split]]] = [[] for _ in range(n_features)]
        for t, tree in enumerate(trees):
            for split in tree.splits:
                by_feature[split.feature].append((t, split))
        kinds = np.zeros(n_features, dtype=np.int64)
        cats = np.zeros(n_features, dtype=np.int64)
        for f, splits in enumerate(by_feature):
            kinds[f], cats[f] = _kind(f, splits, n_categories)
        cut_lists = [
            np.unique([s.rule.threshold for _, s in splits]) if kinds[f] == NUMERIC else np.zeros(0)
            for f, splits in enumerate(by_feature)
        ]
        row_counts = [
            len(cut_lists[f]) + 3 if kinds[f] == NUMERIC else cats[f] + 1 if kinds[f] else 0
            for f in range(n_features)
        ]
        size = sum(row_counts) * width * words.dtype.itemsize
        if size > MAX_TABLE_BYTES:
            raise TooLarge(f"tables would take {size / 2**20:.0f} MiB")
        masks = _Masks(fields, words)
        rows = [
            _numeric_rows(by_feature[f], cut_lists[f], masks, width)
            if kinds[f] == NUMERIC
            else _categorical_rows(by_feature[f], int(cats[f]), masks, width)
            for f in range(n_features)
            if kinds[f] != UNUSED
        ]
        leaf_counts = np.array([t.leaves for t in trees], dtype=np.int64)
        row_start = np.concatenate([[0], np.cumsum(row_counts)[:-1]]).astype(np.int64)
        leaf_start = np.concatenate([[0], np.cumsum(leaf_counts)[:-1]]).astype(np.int64)
        root_credit, below_root = _root_credits(
            trees, sum(row_counts), row_start, cut_lists, cats, leaf_start
        )
        slots = int(np.count_nonzero(below_root, axis=1).max(initial=0))
        sparse = slots <= MAX_SPARSE_SLOTS
        leaf_features, leaf_credits = (
            _padded(below_root, slots)
            if sparse
            else (np.zeros((len(below_root), 0), np.int64), below_root)
        )
        return cls(
            table=np.vstack(rows) if rows else np.zeros((0, width), dtype=words.dtype),
            words=words,
            row_start=row_start,
            kinds=kinds,
            n_categories=cats,
            cuts=np.concatenate([np.zeros(0), *cut_lists]),
            cut_start=np.concatenate([[0], np.cumsum([len(c) for c in cut_lists])]).astype(
                np.int64
            ),
            fields=fields,
            leaf_start=leaf_start,
            leaf_values=np.concatenate([t.leaf_values for t in trees]),
            root_credit=root_credit,
            leaf_features=leaf_features,
            leaf_credits=leaf_credits,
            sparse_credits=sparse,
            bias=base_margin + float(sum(t.root_value for t in trees)),
            base_margin=base_margin,
            float32_inputs=float32_inputs,
            zero_window=zero_window,
        )

    @property
    def nbytes(self) -> int:
        credits = self.root_credit.nbytes + self.leaf_features.nbytes + self.leaf_credits.nbytes
        return int(self.table.nbytes + credits)

    def contributions(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n x features decision-path contributions, raw margin) for a float64 model matrix:
        numbers as they are, categories as their codes, NaN for missing."""
        x = np.ascontiguousarray(features, dtype=np.float64)
        contributions = np.empty(x.shape)  # every row written whole by the kernel
        margin = np.empty(len(x))
        kernels.forest_contributions(
            x,
            self.table,
            self.row_start,
            self.kinds,
            self.n_categories,
            self.cuts,
            self.cut_start,
            self.fields.word,
            self.fields.shift,
            self.fields.mask,
            self.leaf_start,
            self.leaf_values,
            self.root_credit,
            self.leaf_features,
            self.leaf_credits,
            self.sparse_credits,
            self.zero_window,
            self.float32_inputs,
            contributions,
            margin,
            words=self.words,
        )
        return contributions, margin + self.base_margin


def _root_credits(
    trees: list[Tree],
    n_rows: int,
    row_start: np.ndarray,
    cut_lists: list[np.ndarray],
    categories: np.ndarray,
    leaf_start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(per table row: the summed credits of the root splits on its feature, each leaf's
    credits without its tree's root credit). A root split's credit depends on its own feature's
    interval alone, so its share of every row's sum is one table read per feature, not one add
    per tree: for trees of depth 2, half the credits."""
    root_credit = np.zeros(n_rows)
    below_root = np.vstack([t.credits for t in trees])
    for t, tree in enumerate(trees):
        root = tree.root
        if root is None:
            continue
        f, (left, right) = root.feature, tree.root_credits
        goes_left = _goes_left(root.rule, cut_lists[f], int(categories[f]))
        start = int(row_start[f])
        root_credit[start : start + len(goes_left)] += np.where(goes_left, left, right)
        first = int(leaf_start[t])
        below_root[first : first + root.left_hi, f] -= left
        below_root[first + root.left_hi : first + tree.leaves, f] -= right
    return root_credit, below_root


def _goes_left(rule: Rule, cuts: np.ndarray, categories: int) -> np.ndarray:
    """Per table row of the rule's feature (see `_numeric_rows`, `_categorical_rows`): whether
    the split sends it left."""
    if rule.categorical:
        codes = [code in rule.categories for code in range(categories)]
        return np.array([*codes, rule.nan_left])
    at = int(np.searchsorted(cuts, rule.threshold))  # its own cut: rows 0..at are at most it
    intervals = np.arange(len(cuts) + 1) <= at
    return np.array([*intervals, rule.zero_left, rule.nan_left])


def _padded(credits: np.ndarray, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """(features, credits) of each row's non-zero credits (at most `slots`), padded with
    feature 0 and a credit of zero (adding it changes nothing)."""
    nonzero = credits != 0
    features = np.zeros((len(credits), slots), dtype=np.int64)
    values = np.zeros((len(credits), slots))
    for leaf, used in enumerate(nonzero):
        found = np.flatnonzero(used)
        features[leaf, : len(found)] = found
        values[leaf, : len(found)] = credits[leaf, found]
    return features, values


def _kind(
    feature: int, splits: list[tuple[int, Split]], n_categories: dict[int, int]
) -> tuple[int, int]:
    if not splits:
        return UNUSED, 0
    categorical = {s.rule.categorical for _, s in splits}
    if categorical == {False}:
        return NUMERIC, 0
    if categorical != {True}:
        raise ValueError(f"feature {feature} has both numerical and categorical splits")
    highest = max(max(s.rule.categories, default=0) for _, s in splits)
    return CATEGORICAL, max(n_categories.get(feature, 0), highest + 1)


@dataclass(frozen=True)
class FieldLayout:
    """Where each tree's leaf bits sit in a table row: its first word, the field's lowest bit
    in that word and the field's mask once shifted down (all ones for a tree of whole words,
    whose leaves run on over the next words)."""

    word: np.ndarray  # per tree, int64
    shift: np.ndarray  # per tree, in the words' type (numba mixes no signed with unsigned)
    mask: np.ndarray  # per tree, in the words' type
    width: int  # words in a table row

    @classmethod
    def pack(cls, leaves: list[int], words: kernels.Words) -> FieldLayout:
        """Fields of a power of two of bits, the widest placed first: every field then starts
        at a multiple of its own size and never crosses a word. The trees keep their order
        for the kernel (the margin adds their leaf values in the model's own order)."""
        bits = words.bits
        sizes = [
            bits * -(-n // bits) if n > bits else 1 << max(n - 1, 0).bit_length() for n in leaves
        ]
        word = np.zeros(len(leaves), dtype=np.int64)
        shift = np.zeros(len(leaves), dtype=words.dtype)
        mask = np.full(len(leaves), words.all_ones, dtype=words.dtype)
        cursor = 0  # in bits
        for t in sorted(range(len(leaves)), key=lambda t: -sizes[t]):
            word[t], offset = divmod(cursor, bits)
            shift[t] = offset
            if sizes[t] < bits:
                mask[t] = (1 << sizes[t]) - 1
            cursor += sizes[t]
        return cls(word, shift, mask, -(-cursor // bits))


class _Masks:
    """Per split: the words of its tree to AND so that the left subtree's leaves are cleared."""

    def __init__(self, fields: FieldLayout, words: kernels.Words) -> None:
        self.fields = fields
        self.words = words
        self._cache: dict[tuple[int, int, int], list[tuple[int, Any]]] = {}

    def apply(self, row: np.ndarray, tree: int, split: Split) -> None:
        for word, mask in self._words(tree, split.left_lo, split.left_hi):
            row[word] &= mask

    def _words(self, tree: int, lo: int, hi: int) -> list[tuple[int, Any]]:
        """(word, mask) pairs; masks are numpy scalars of the words' type."""
        key = (tree, lo, hi)
        if key not in self._cache:
            first, bits = int(self.fields.word[tree]), self.words.bits
            offset = int(self.fields.shift[tree])  # 0 for a tree of whole words
            words: list[tuple[int, Any]] = []
            for w in range(lo // bits, (hi - 1) // bits + 1):
                a, b = max(lo, bits * w) - bits * w, min(hi, bits * w + bits) - bits * w
                cleared = ((1 << (b - a)) - 1) << (a + offset)
                mask = self.words.dtype.type(int(self.words.all_ones) ^ cleared)
                words.append((first + w, mask))
            self._cache[key] = words
        return self._cache[key]


def _numeric_rows(
    splits: list[tuple[int, Split]], cuts: np.ndarray, masks: _Masks, width: int
) -> np.ndarray:
    """Row b: the splits failed by a value above exactly b thresholds (x <= threshold goes
    left, so a value fails every split whose threshold is below it); then zero, then NaN."""
    rows = np.empty((len(cuts) + 3, width), dtype=masks.words.dtype)
    current = np.full(width, masks.words.all_ones)
    ordered = sorted(splits, key=lambda ts: ts[1].rule.threshold)
    i = 0
    rows[0] = current
    for b, cut in enumerate(cuts, start=1):
        while i < len(ordered) and ordered[i][1].rule.threshold <= cut:
            masks.apply(current, *ordered[i])
            i += 1
        rows[b] = current
    rows[-2] = _special_row(splits, masks, width, lambda s: s.rule.zero_left)
    rows[-1] = _special_row(splits, masks, width, lambda s: s.rule.nan_left)
    return rows


def _categorical_rows(
    splits: list[tuple[int, Split]], categories: int, masks: _Masks, width: int
) -> np.ndarray:
    """Row c: the splits code c fails; the last row: a missing, negative or unknown code."""
    rows = np.full((categories + 1, width), masks.words.all_ones)
    for tree, split in splits:
        for code in range(categories):
            if code not in split.rule.categories:
                masks.apply(rows[code], tree, split)
        if not split.rule.nan_left:
            masks.apply(rows[categories], tree, split)
    return rows


def _special_row(
    splits: list[tuple[int, Split]], masks: _Masks, width: int, goes_left: Callable[[Split], bool]
) -> np.ndarray:
    row = np.full(width, masks.words.all_ones)
    for tree, split in splits:
        if not goes_left(split):
            masks.apply(row, tree, split)
    return row


def warm_up() -> None:
    """Compile (or load from numba's cache) the forest's loop, for 32- and 64-bit words."""
    split = Split(Rule(0, False, 0.5, frozenset(), nan_left=True, zero_left=True), 0, 1)
    small = Tree([split], np.array([-1.0, 1.0]), np.array([0, 1]), np.zeros((2, 1)), 0.0)
    leaves = 33  # a tree too wide for 32-bit words: compiles the 64-bit variant too
    wide = Tree([split], np.zeros(leaves), np.arange(leaves), np.zeros((leaves, 1)), 0.0)
    for trees in ([small], [wide]):
        ForestTables.build(trees, 1, {}).contributions(np.array([[0.0], [1.0]]))
