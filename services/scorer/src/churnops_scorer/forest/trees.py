"""A fitted model's trees in one form, whichever library grew them.

Each family's parser (`lightgbm_trees`, `xgboost_trees`) turns its model into `Node`s whose
splits carry their decision rule as data: `x <= threshold` goes left for numbers, a code in
`categories` goes left for categories, and where a missing value and a zero go. From those nodes
one builder derives, per tree: its splits with the in-order leaf numbers of their left subtrees,
its leaves numbered left to right, each leaf's value, and each leaf's decision-path credits
(Saabas): every split on the way to a leaf credits its feature with the change in the node's
expected value (the cover-weighted mean of the leaf values below). A leaf's credits plus the
tree's root value equal the leaf's value, so over all trees a row's credits plus the bias
equal the model's raw margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Rule:
    """Where a split sends a row."""

    feature: int
    categorical: bool
    threshold: float  # numbers: x <= threshold goes left
    categories: frozenset[int]  # categories: these codes go left
    nan_left: bool  # a missing value (and, for categories, an unknown or negative code)
    zero_left: bool  # a value the model reads as zero


@dataclass(frozen=True)
class Split:
    """One internal node and the in-order leaf numbers of its left subtree [left_lo, left_hi)."""

    rule: Rule
    left_lo: int
    left_hi: int

    @property
    def feature(self) -> int:
        return self.rule.feature


@dataclass
class Node:
    """A parsed node: a leaf (`leaf_value` set) or a split with two children."""

    cover: float
    leaf_value: float | None = None
    leaf_id: int = 0  # the library's own leaf number (LightGBM's pred_leaf output)
    rule: Rule | None = None
    children: list[Node] = field(default_factory=list)  # [left, right]


@dataclass(frozen=True)
class Tree:
    splits: list[Split]
    leaf_values: np.ndarray  # in-order
    leaf_ids: np.ndarray  # the library's leaf number of each in-order leaf
    credits: np.ndarray  # (leaves, features), in-order
    root_value: float
    root_credits: tuple[float, float] = (0.0, 0.0)  # the root split's credit: left, right

    @property
    def leaves(self) -> int:
        return len(self.leaf_values)

    @property
    def root(self) -> Split | None:
        """The root split: its left subtree starts at the first leaf and is the widest such."""
        firsts = [s for s in self.splits if s.left_lo == 0]
        return max(firsts, key=lambda s: s.left_hi) if firsts else None


def build_tree(root: Node, n_features: int) -> Tree:
    expected = _expected_values(root)
    splits: list[Split] = []
    values: list[float] = []
    ids: list[int] = []
    credits: list[np.ndarray] = []
    # Iterative in-order walk: (node, credits so far, whether its left subtree is done).
    stack: list[tuple[Node, np.ndarray, bool]] = [(root, np.zeros(n_features), False)]
    opened: dict[int, int] = {}  # id(node) -> leaves numbered before its left subtree
    root_credits = (0.0, 0.0)
    while stack:
        node, path, closing = stack.pop()
        if node.rule is None:
            values.append(float(node.leaf_value or 0.0))
            ids.append(node.leaf_id)
            credits.append(path)
            continue
        if closing:
            splits.append(Split(node.rule, opened[id(node)], len(values)))
            continue
        left, right = node.children
        left_path, right_path = path.copy(), path.copy()
        left_path[node.rule.feature] += expected[id(left)] - expected[id(node)]
        right_path[node.rule.feature] += expected[id(right)] - expected[id(node)]
        if node is root:  # also kept apart: the tables add it per interval of its feature
            root_credits = (left_path[node.rule.feature], right_path[node.rule.feature])
        opened[id(node)] = len(values)
        stack.extend([(right, right_path, False), (node, path, True), (left, left_path, False)])
    return Tree(
        splits,
        np.asarray(values),
        np.asarray(ids, dtype=np.int64),
        np.vstack(credits),
        expected[id(root)],
        root_credits,
    )


def _expected_values(root: Node) -> dict[int, float]:
    """Cover-weighted mean leaf value per node, keyed by id(node); post-order, no recursion."""
    out: dict[int, float] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if node.rule is None:
            out[id(node)] = float(node.leaf_value or 0.0)
            continue
        left, right = node.children
        if not children_done:
            stack.extend([(node, True), (left, False), (right, False)])
            continue
        total = left.cover + right.cover
        out[id(node)] = (
            (out[id(left)] * left.cover + out[id(right)] * right.cover) / total
            if total > 0
            else (out[id(left)] + out[id(right)]) / 2
        )
    return out
