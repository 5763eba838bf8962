"""Decision-path (Saabas) attribution computed from a fitted model's own trees.

Each split on a row's path credits its feature with the change in the node's expected value;
summed over trees, a row's credits plus the bias (the roots' expected values) equal the model's
raw margin exactly, so the probability comes from the same numbers (then through the
pipeline's calibrator, a monotone map that leaves the reasons as they are).

The trees (LightGBM's or XGBoost's, each parsed with its library's own rules) are compiled once
per model into bit-vector tables (`churnops_scorer.forest`), which find every tree's exit leaf
and add up its credits in one compiled pass, several times faster than the library's own
predict. A model the tables cannot take falls back: LightGBM to its `pred_leaf` plus a sparse
sum of the same per-leaf credits, XGBoost to its native `approx_contribs=True` (the same
attribution) and its own probability.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

import numpy as np
import pandas as pd

from churnops_common.ml.pipeline import ChurnPipeline
from churnops_scorer.forest import (
    ForestTables,
    TooLarge,
    Tree,
    Unsupported,
    parse_lightgbm_trees,
    parse_xgboost_trees,
)

log = logging.getLogger(__name__)
SLICE_ROWS = 8192
_CACHE: dict[int, tuple[weakref.ref[ChurnPipeline], PathAttribution]] = {}
_CACHE_LOCK = threading.Lock()


def sigmoid(margin: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-margin)))


class PathAttribution:
    """Contributions and probability per row, by decision path, for one fitted pipeline."""

    def __init__(self, pipeline: ChurnPipeline, tables: ForestTables | None = None) -> None:
        """`tables`: the pipeline's trees compiled before (its scoring form); its model is then
        not read at all."""
        self.pipeline = pipeline
        self.n_features = len(pipeline.input_columns)
        self.compiled: ForestTables | None = tables
        self._credits = np.zeros((0, self.n_features))
        self._offsets = np.zeros(0, dtype=np.int64)
        self._root_values = np.zeros(0)
        self._ones_cache = np.ones(0)
        if tables is not None:
            return
        if pipeline.family == "lightgbm":
            self._prepare_lightgbm()
        else:
            self._prepare_xgboost()

    @classmethod
    def of(cls, pipeline: ChurnPipeline, tables: ForestTables | None = None) -> PathAttribution:
        """One per loaded model and process: compiling the trees takes a fraction of a second,
        once, rather than once per batch. `tables`: compiled before (a scoring form), used
        when the pipeline has no attribution yet."""
        with _CACHE_LOCK:
            for key, (ref, _) in list(_CACHE.items()):
                if ref() is None:  # a gone pipeline's id can be reused by a new object
                    del _CACHE[key]
            hit = _CACHE.get(id(pipeline))
            if hit is not None and hit[0]() is pipeline:
                return hit[1]
            attribution = cls(pipeline, tables)
            _CACHE[id(pipeline)] = (weakref.ref(pipeline), attribution)
            return attribution

    def _prepare_lightgbm(self) -> None:
        booster = self.pipeline.model.booster_
        trees = parse_lightgbm_trees(booster.dump_model(), self.n_features)
        self._root_values = np.array([t.root_value for t in trees])
        try:
            self.compiled = self._compile(trees, booster)
        except TooLarge as exc:
            log.info("scoring through LightGBM's pred_leaf: %s", exc)
        if self.compiled is None:
            self._prepare_pred_leaf(trees)
        else:
            self._log_compiled(len(trees))

    def _compile(self, trees: list[Tree], booster: Any) -> ForestTables | None:
        """Tables, when the model reads category codes exactly as FeatureMatrix writes them."""
        pre = self.pipeline.preprocessor
        expected = [list(v) for v in pre.model_categorical.values()]
        if expected and list(getattr(booster, "pandas_categorical", None) or []) != expected:
            log.info(
                "scoring through LightGBM's pred_leaf: its categories differ from the pipeline's"
            )
            return None
        return ForestTables.build(trees, self.n_features, self._category_counts())

    def _category_counts(self) -> dict[int, int]:
        """Per categorical feature (by model column): how many codes FeatureMatrix can write."""
        pre = self.pipeline.preprocessor
        columns = pre.input_columns
        return {columns.index(c): len(v) for c, v in pre.model_categorical.items()}

    def _prepare_xgboost(self) -> None:
        counts = self._category_counts()
        try:
            trees, base_margin = parse_xgboost_trees(self.pipeline.model, self.n_features, counts)
            self.compiled = ForestTables.build(
                trees, self.n_features, counts, base_margin, float32_inputs=True, zero_window=0.0
            )
        except (Unsupported, TooLarge) as exc:
            log.info("scoring through XGBoost's own predict: %s", exc)
            return
        self._log_compiled(len(trees))

    def _log_compiled(self, trees: int) -> None:
        assert self.compiled is not None
        log.info(
            "%s model: %d trees compiled into %.1f MiB of tables",
            self.pipeline.family,
            trees,
            self.compiled.nbytes / 2**20,
        )

    def _prepare_pred_leaf(self, trees: list[Tree]) -> None:
        """Per-leaf credits in LightGBM's `leaf_index` order, tree after tree."""
        blocks = []
        for tree in trees:
            block = np.zeros_like(tree.credits)
            block[tree.leaf_ids] = tree.credits
            blocks.append(block)
        sizes = np.array([len(b) for b in blocks])
        self._offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._credits = np.vstack(blocks)

    def matrix_contributions(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(contributions, probability) for a FeatureMatrix output, through the compiled tables."""
        if self.compiled is None:
            raise RuntimeError("this model has no compiled tables")
        values, margin = self.compiled.contributions(matrix)
        return values, self.pipeline.calibrated(sigmoid(margin))

    def contributions(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(n x features contributions, probability) for preprocessed model input."""
        if self.compiled is not None:
            return self.matrix_contributions(_codes_matrix(features))
        if self.pipeline.family == "lightgbm":
            values, margin = self._lightgbm(features)
            return values, self.pipeline.calibrated(sigmoid(margin))
        values = self._xgboost(features)
        # XGBoost sums in float32: take its own probability rather than re-deriving it.
        probability = np.asarray(self.pipeline.model.predict_proba(features)[:, 1], "float64")
        return values, self.pipeline.calibrated(probability)

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
        from scipy import sparse  # here only: the compiled route, taken far more, needs none

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


def _codes_matrix(features: pd.DataFrame) -> np.ndarray:
    """A preprocessed frame as LightGBM reads it: categories as codes, missing as NaN."""
    out = np.empty(features.shape)
    for j, (_, column) in enumerate(features.items()):
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy(dtype=np.float64)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        else:
            out[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return out
