"""Decision-path (Saabas) attribution computed from a fitted model's own trees.

For each tree, a node's expected value is the training-cover-weighted mean of the leaf values
below it. Walking from the root to the leaf a row lands in, each split credits its feature with
the change in expected value. Summed over trees, a row's credits plus the roots' expected values
(the bias) equal the model's raw margin exactly, so the probability comes from the same numbers.

LightGBM: the per-leaf credit vectors are precomputed once per model; scoring a batch is one
`pred_leaf` pass plus a sparse sum. XGBoost computes the same thing natively
(`approx_contribs=True`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from churnops_common.ml.pipeline import ChurnPipeline

SLICE_ROWS = 8192


def sigmoid(margin: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-margin)))


@dataclass
class _Tree:
    credits: np.ndarray  # (leaves, features): what a row reaching each leaf credits each feature
    root_value: float


def _lightgbm_tree(root: dict[str, Any], n_features: int) -> _Tree:
    """Credits per leaf for one tree of `Booster.dump_model()`."""
    if "leaf_index" not in root and "split_feature" not in root:  # a single-leaf tree
        return _Tree(np.zeros((1, n_features)), float(root.get("leaf_value", 0.0)))

    def expected(node: dict[str, Any]) -> tuple[float, float]:
        if "leaf_index" in node:
            node["_value"] = float(node["leaf_value"])
            return node["_value"], float(node.get("leaf_count", 1) or 0)
        left_value, left_count = expected(node["left_child"])
        right_value, right_count = expected(node["right_child"])
        total = left_count + right_count
        node["_value"] = (
            (left_value * left_count + right_value * right_count) / total
            if total > 0
            else (left_value + right_value) / 2
        )
        return node["_value"], total

    expected(root)
    leaves = _count_leaves(root)
    credits = np.zeros((leaves, n_features))
    stack: list[tuple[dict[str, Any], np.ndarray]] = [(root, np.zeros(n_features))]
    while stack:
        node, path = stack.pop()
        if "leaf_index" in node:
            credits[int(node["leaf_index"])] = path
            continue
        feature = int(node["split_feature"])
        for child in (node["left_child"], node["right_child"]):
            step = path.copy()
            step[feature] += child["_value"] - node["_value"]
            stack.append((child, step))
    return _Tree(credits, float(root["_value"]))


def _count_leaves(node: dict[str, Any]) -> int:
    if "leaf_index" in node:
        return 1
    return _count_leaves(node["left_child"]) + _count_leaves(node["right_child"])


class PathAttribution:
    """Contributions and raw margin per row, by decision path, for one fitted pipeline."""

    def __init__(self, pipeline: ChurnPipeline) -> None:
        self.pipeline = pipeline
        self.n_features = len(pipeline.input_columns)
        self._credits: np.ndarray | None = None
        self._offsets: np.ndarray | None = None
        self._ones_cache = np.ones(0)
        if pipeline.family == "lightgbm":
            self._prepare_lightgbm()

    @classmethod
    def of(cls, pipeline: ChurnPipeline) -> PathAttribution:
        return cls(pipeline)

    def _prepare_lightgbm(self) -> None:
        dump = self.pipeline.model.booster_.dump_model()
        trees = [_lightgbm_tree(t["tree_structure"], self.n_features) for t in dump["tree_info"]]
        sizes = np.array([len(t.credits) for t in trees])
        self._offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._credits = np.vstack([t.credits for t in trees])
        self._root_values = np.array([t.root_value for t in trees])

    def contributions(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(n x features contributions, probability) for preprocessed model input."""
        if self.pipeline.family == "lightgbm":
            values, margin = self._lightgbm(features)
            return values, sigmoid(margin)
        values = self._xgboost(features)
        # XGBoost sums in float32: take its own probability rather than re-deriving it.
        probability = np.asarray(self.pipeline.model.predict_proba(features)[:, 1], "float64")
        return values, probability

    def _lightgbm(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        # In slices: the leaf indices and the sparse one-hot cost ~24 bytes per row and tree.
        parts = [
            self._lightgbm_slice(features.iloc[lo : lo + SLICE_ROWS])
            for lo in range(0, len(features), SLICE_ROWS)
        ]
        if not parts:
            return np.zeros((0, self.n_features)), np.zeros(0)
        return (np.vstack([v for v, _ in parts]), np.concatenate([m for _, m in parts]))

    def _lightgbm_slice(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        assert self._credits is not None and self._offsets is not None
        leaves = np.asarray(self.pipeline.model.booster_.predict(features, pred_leaf=True))
        leaves = leaves.reshape(len(features), -1)
        n, used = leaves.shape  # `used` < trees when the model stops at its best iteration
        index = (leaves + self._offsets[None, :used]).ravel()
        onehot = sparse.csr_matrix(
            (self._ones(index.size), index, np.arange(0, n * used + 1, used)),
            shape=(n, len(self._credits)),
        )
        values = np.asarray(onehot @ self._credits)
        bias = float(self._root_values[:used].sum())
        return values, values.sum(axis=1) + bias

    def _ones(self, size: int) -> np.ndarray:
        """A read-only vector of ones, reused across chunks (allocating it each time shows)."""
        if self._ones_cache.size < size:
            self._ones_cache = np.ones(size)
            self._ones_cache.flags.writeable = False
        return self._ones_cache[:size]

    def _xgboost(self, features: pd.DataFrame) -> np.ndarray:
        import xgboost as xgb

        matrix = xgb.DMatrix(features, enable_categorical=True)
        raw = np.asarray(
            self.pipeline.model.get_booster().predict(
                matrix, pred_contribs=True, approx_contribs=True
            )
        )
        return np.asarray(raw[:, :-1], dtype="float64")
