"""A fitted LightGBM model's trees, parsed once from `Booster.dump_model()`.

For each tree: its splits with LightGBM's own decision rules, its leaves numbered left to right
(with LightGBM's `leaf_index` kept for `pred_leaf` output), each leaf's value, and each leaf's
decision-path credits (Saabas): every split on the way to a leaf credits its feature with the
change in the node's expected value (the training-cover-weighted mean of the leaf values below).
A leaf's credits plus the tree's root value equal the leaf's value, so over all trees a row's
credits plus the bias equal the model's raw margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Missing = Literal["None", "Zero", "NaN"]
# LightGBM treats |x| <= kZeroThreshold as zero (it drops such values from a dense row); the
# constant is the float 1e-35f, a little above the double 1e-35.
ZERO_THRESHOLD = float(np.float32(1e-35))


@dataclass(frozen=True)
class Split:
    """One internal node and the in-order leaf numbers of its left subtree [left_lo, left_hi)."""

    feature: int
    categorical: bool
    threshold: float  # numerical splits: x <= threshold goes left
    categories: frozenset[int]  # categorical splits: these codes go left
    default_left: bool
    missing: Missing
    left_lo: int
    left_hi: int

    def left_for_nan(self) -> bool:
        """LightGBM's direction for a missing value (tree.h, NumericalDecision)."""
        if self.categorical:
            return False  # NaN always goes right on a categorical split
        if self.missing == "None":
            return self.threshold >= 0.0  # NaN is read as 0
        return self.default_left  # NaN: missing; Zero: NaN becomes 0, which is missing

    def left_for_zero(self) -> bool:
        if self.categorical:
            return 0 in self.categories
        return self.default_left if self.missing == "Zero" else self.threshold >= 0.0


@dataclass(frozen=True)
class Tree:
    splits: list[Split]
    leaf_values: np.ndarray  # in-order
    leaf_ids: np.ndarray  # LightGBM's leaf_index of each in-order leaf
    credits: np.ndarray  # (leaves, features), in-order
    root_value: float

    @property
    def leaves(self) -> int:
        return len(self.leaf_values)


def parse_trees(dump: dict[str, Any], n_features: int) -> list[Tree]:
    return [_parse_tree(info["tree_structure"], n_features) for info in dump["tree_info"]]


def _parse_tree(root: dict[str, Any], n_features: int) -> Tree:
    expected: dict[int, float] = {}
    _expected_values(root, expected)
    splits: list[Split] = []
    values: list[float] = []
    ids: list[int] = []
    credits: list[np.ndarray] = []
    # Iterative in-order walk (deep trees would overflow recursion in a long tail).
    stack: list[tuple[dict[str, Any], np.ndarray, bool]] = [(root, np.zeros(n_features), False)]
    opened: dict[int, int] = {}  # id(node) -> leaves numbered before its left subtree
    while stack:
        node, path, closing = stack.pop()
        if "split_feature" not in node:
            values.append(float(node.get("leaf_value", 0.0)))
            ids.append(int(node.get("leaf_index", 0)))
            credits.append(path)
            continue
        if closing:  # left subtree done: its leaves are [opened, now)
            splits.append(_split(node, opened[id(node)], len(values)))
            continue
        feature = int(node["split_feature"])
        left, right = node["left_child"], node["right_child"]
        left_path, right_path = path.copy(), path.copy()
        left_path[feature] += expected[id(left)] - expected[id(node)]
        right_path[feature] += expected[id(right)] - expected[id(node)]
        opened[id(node)] = len(values)
        stack.extend([(right, right_path, False), (node, path, True), (left, left_path, False)])
    return Tree(
        splits,
        np.asarray(values),
        np.asarray(ids, dtype=np.int64),
        np.vstack(credits),
        expected[id(root)],
    )


def _expected_values(root: dict[str, Any], out: dict[int, float]) -> None:
    """Cover-weighted mean leaf value per node, keyed by id(node); post-order, no recursion."""
    counts: dict[int, float] = {}
    stack: list[tuple[dict[str, Any], bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if "split_feature" not in node:
            out[id(node)] = float(node.get("leaf_value", 0.0))
            counts[id(node)] = float(node.get("leaf_count", 1) or 0)
            continue
        left, right = node["left_child"], node["right_child"]
        if not children_done:
            stack.extend([(node, True), (left, False), (right, False)])
            continue
        lc, rc = counts[id(left)], counts[id(right)]
        total = lc + rc
        out[id(node)] = (
            (out[id(left)] * lc + out[id(right)] * rc) / total
            if total > 0
            else (out[id(left)] + out[id(right)]) / 2
        )
        counts[id(node)] = total


def _split(node: dict[str, Any], left_lo: int, left_hi: int) -> Split:
    categorical = node["decision_type"] == "=="
    return Split(
        feature=int(node["split_feature"]),
        categorical=categorical,
        threshold=0.0 if categorical else float(node["threshold"]),
        categories=(
            frozenset(int(c) for c in str(node["threshold"]).split("||"))
            if categorical
            else frozenset()
        ),
        default_left=bool(node.get("default_left", False)),
        missing=node.get("missing_type", "None"),
        left_lo=left_lo,
        left_hi=left_hi,
    )
