"""The compiled trees (bit-vector tables) against LightGBM and XGBoost themselves, edge values
included, and the compiled scoring route against the pandas route; the worked example in the
forest package's docstring runs as written."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

import churnops_scorer.forest
from churnops_common.ml.pipeline import ChurnPipeline, TabularPreprocessor
from churnops_common.synthetic import generate
from churnops_scorer.forest import parse_lightgbm_trees, parse_xgboost_trees
from churnops_scorer.forest import tables as forest_tables
from churnops_scorer.path_attribution import PathAttribution, _codes_matrix
from churnops_scorer.scoring import REASON_VALUES, REASONS

from .conftest import ID, TARGET
from .test_scoring import _score


def _fit(**params: Any) -> ChurnPipeline:
    train = generate(3000, seed=11)
    # Zeros, so that zero_as_missing models get "Zero" splits, and missing numbers.
    train.loc[train.index[::9], "support_calls"] = 0
    train.loc[train.index[::13], "monthly_charges"] = np.nan
    pre = TabularPreprocessor.fit(train, exclude=(ID, TARGET))
    model = lgb.LGBMClassifier(n_estimators=30, verbose=-1, random_state=0, n_jobs=1, **params)
    model.fit(pre.transform(train), train[TARGET])
    return ChurnPipeline(pre, model, "lightgbm", id_column=ID, target_column=TARGET)


MODELS = {
    "31 leaves, 32-bit words": {"num_leaves": 31},
    "48 leaves, zero as missing": {"num_leaves": 48, "zero_as_missing": True},
    "100 leaves, two words per tree": {"num_leaves": 100, "min_child_samples": 3},
    "no splits at all": {"min_split_gain": 1e9},
}


@pytest.fixture(scope="module", params=list(MODELS))
def model(request: pytest.FixtureRequest) -> ChurnPipeline:
    return _fit(**MODELS[request.param])


def _lightgbm_thresholds(pipeline: ChurnPipeline) -> dict[int, list[float]]:
    dump = pipeline.model.booster_.dump_model()
    thresholds: dict[int, list[float]] = {}
    stack = [t["tree_structure"] for t in dump["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            if node["decision_type"] == "<=":
                thresholds.setdefault(node["split_feature"], []).append(float(node["threshold"]))
            stack += [node["left_child"], node["right_child"]]
    return thresholds


def _xgboost_trees(pipeline: ChurnPipeline) -> list[dict[str, Any]]:
    model = json.loads(pipeline.model.get_booster().save_raw("json"))
    trees: list[dict[str, Any]] = model["learner"]["gradient_booster"]["model"]["trees"]
    return trees


def _xgboost_thresholds(pipeline: ChurnPipeline) -> dict[int, list[float]]:
    thresholds: dict[int, list[float]] = {}
    for tree in _xgboost_trees(pipeline):
        for nid, feature in enumerate(tree["split_indices"]):
            if tree["left_children"][nid] != -1 and tree["split_type"][nid] == 0:
                thresholds.setdefault(feature, []).append(float(tree["split_conditions"][nid]))
    return thresholds


def _edge_rows(pipeline: ChurnPipeline, n: int = 4000) -> pd.DataFrame:
    """A batch with what trips tree evaluators: values exactly on thresholds, zeros, missing,
    negative, unseen and missing categories."""
    frame = generate(n, seed=12)
    numeric = pipeline.preprocessor.numeric
    frame[numeric] = frame[numeric].astype("float64")
    rng = np.random.default_rng(0)
    thresholds = (
        _lightgbm_thresholds(pipeline)
        if pipeline.family == "lightgbm"
        else _xgboost_thresholds(pipeline)
    )
    for f, values in thresholds.items():
        column = pipeline.input_columns[f]
        rows = rng.choice(n, size=min(n // 4, 200 * len(values)), replace=True)
        frame.loc[frame.index[rows], column] = rng.choice(values, size=len(rows))
    frame.loc[frame.index[::7], numeric[0]] = np.nan
    frame.loc[frame.index[::11], numeric[1]] = 0.0
    frame.loc[frame.index[::17], numeric[2]] = -1.0
    frame.loc[frame.index[::5], "support_calls"] = 0
    frame["region"] = frame["region"].astype(object)
    frame.loc[frame.index[::6], "region"] = "atlantis"  # unseen
    frame.loc[frame.index[::10], "contract"] = None
    return frame


def test_tables_give_lightgbms_margin_and_the_leaf_path_credits(model: ChurnPipeline) -> None:
    frame = _edge_rows(model)
    features = model.preprocessor.transform(frame)
    compiled = PathAttribution(model)
    assert compiled.compiled is not None
    values, margin = compiled.compiled.contributions(_codes_matrix(features))
    expected = model.model.booster_.predict(features, raw_score=True)
    np.testing.assert_allclose(margin, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(values.sum(axis=1) + compiled.compiled.bias, margin, atol=1e-9)
    # The same credits as LightGBM's own pred_leaf route (the fallback for huge models).
    fallback = _without_tables(model)
    leaf_values, probability = fallback.contributions(features)
    np.testing.assert_allclose(values, leaf_values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probability, model.churn_probability(frame), rtol=0, atol=1e-12)


def _fit_xgboost(depth: int) -> ChurnPipeline:
    train = generate(3000, seed=13)
    pre = TabularPreprocessor.fit(train, exclude=(ID, TARGET))
    model = xgb.XGBClassifier(
        n_estimators=30, max_depth=depth, enable_categorical=True, tree_method="hist", n_jobs=1
    )
    model.fit(pre.transform(train), train[TARGET])
    return ChurnPipeline(pre, model, "xgboost", id_column=ID, target_column=TARGET)


@pytest.mark.parametrize("depth", [4, 8])
def test_xgboost_tables_land_in_xgboosts_own_leaves(depth: int) -> None:
    pipeline = _fit_xgboost(depth)
    model, pre = pipeline.model, pipeline.preprocessor
    frame = _edge_rows(pipeline)
    features = pre.transform(frame)
    compiled = PathAttribution(pipeline).compiled
    assert compiled is not None
    values, margin = compiled.contributions(_codes_matrix(features))
    # The leaves XGBoost itself lands in, their values summed in float64: the same number.
    matrix = xgb.DMatrix(features, enable_categorical=True)
    booster = model.get_booster()
    leaves = booster.predict(matrix, pred_leaf=True).astype(int)
    leaf_values = [np.asarray(t["split_conditions"], np.float32) for t in _xgboost_trees(pipeline)]
    own = sum(leaf_values[t][leaves[:, t]].astype(np.float64) for t in range(leaves.shape[1]))
    np.testing.assert_allclose(margin - compiled.base_margin, own, rtol=0, atol=1e-12)
    # Against XGBoost's float32 sums: the same within float32 rounding.
    np.testing.assert_allclose(margin, booster.predict(matrix, output_margin=True), atol=1e-5)
    approx = booster.predict(matrix, pred_contribs=True, approx_contribs=True)
    np.testing.assert_allclose(values, approx[:, :-1], atol=1e-5)
    np.testing.assert_allclose(values.sum(axis=1) + compiled.bias, margin, atol=1e-9)


def _dense_reference(
    attribution: PathAttribution, features: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """(contributions, margin) the plain way: the leaf the library itself sends each row to
    in each tree (its own `pred_leaf`), that leaf's whole row of credits and its value, added
    tree after tree in float64."""
    pipeline, n = attribution.pipeline, attribution.n_features
    base = 0.0
    if pipeline.family == "lightgbm":
        booster = pipeline.model.booster_
        trees = parse_lightgbm_trees(booster.dump_model(), n)
        leaves = np.asarray(booster.predict(features, pred_leaf=True)).reshape(len(features), -1)
    else:
        counts = attribution._category_counts()
        trees, base = parse_xgboost_trees(pipeline.model, n, counts)
        matrix = xgb.DMatrix(features, enable_categorical=True)
        leaves = pipeline.model.get_booster().predict(matrix, pred_leaf=True).astype(np.int64)
    contributions, margin = np.zeros((len(features), n)), np.zeros(len(features))
    for t, tree in enumerate(trees):
        in_order = np.full(int(tree.leaf_ids.max()) + 1, -1)
        in_order[tree.leaf_ids] = np.arange(tree.leaves)
        leaf = in_order[leaves[:, t]]
        assert (leaf >= 0).all()
        contributions += tree.credits[leaf]
        margin += tree.leaf_values[leaf]
    return contributions, margin + base


def _assert_kernel_is_the_dense_sum(pipeline: ChurnPipeline) -> None:
    frame = _edge_rows(pipeline)
    if pipeline.family == "xgboost":
        # A float64 hair above the float32 just below a threshold: read as float32, as XGBoost
        # reads it, that float32 (left of the threshold); read as it is, above it (right).
        rng = np.random.default_rng(1)
        for f, values in _xgboost_thresholds(pipeline).items():
            rows = rng.choice(len(frame), size=min(len(frame) // 8, 50 * len(values)))
            thresholds = rng.choice(values, size=len(rows)).astype(np.float32)
            below = np.nextafter(thresholds, np.float32(-np.inf)).astype(np.float64)
            frame.loc[frame.index[rows], pipeline.input_columns[f]] = np.nextafter(below, np.inf)
    features = pipeline.preprocessor.transform(frame)
    attribution = PathAttribution(pipeline)
    assert attribution.compiled is not None
    values, margin = attribution.compiled.contributions(_codes_matrix(features))
    expected_values, expected_margin = _dense_reference(attribution, features)
    # The margin to the last bit; the credits in another order (each root split's credit is
    # added per interval of its feature, the rest per leaf), so within rounding.
    np.testing.assert_array_equal(margin, expected_margin)
    np.testing.assert_allclose(values, expected_values, rtol=0, atol=1e-12)


def test_kernel_sums_the_dense_credits_of_lightgbms_own_leaves(model: ChurnPipeline) -> None:
    """The compiled pass against the plain dense sum, to the last bit (up to two words per
    tree, and a model without splits)."""
    _assert_kernel_is_the_dense_sum(model)


@pytest.mark.parametrize("depth", [2, 4, 8])
def test_kernel_sums_the_dense_credits_of_xgboosts_own_leaves(depth: int) -> None:
    """The same for XGBoost, depth 2 (what the trainer usually picks) to 8 (64-bit words):
    the kernel rounds inputs to float32 as it reads them, values on the thresholds included."""
    _assert_kernel_is_the_dense_sum(_fit_xgboost(depth))


def _without_tables(pipeline: ChurnPipeline) -> PathAttribution:
    budget = forest_tables.MAX_TABLE_BYTES
    forest_tables.MAX_TABLE_BYTES = -1
    try:
        attribution = PathAttribution(pipeline)
    finally:
        forest_tables.MAX_TABLE_BYTES = budget
    assert attribution.compiled is None
    return attribution


def test_compiled_route_scores_a_file_as_the_pandas_route_does(
    pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    frame = _edge_rows(pipeline, 3000)
    frame[TARGET] = np.where(np.arange(3000) % 3 == 0, "Yes", "no")
    frame = frame.astype({"monthly_charges": object})
    # Text in a number column, far into the file: a reader that guessed the column's type
    # from its first block would fail there.
    frame.loc[frame.index[2900], "monthly_charges"] = "n/a?"
    frame.loc[frame.index[2901], "monthly_charges"] = " "
    path = tmp_path / "edge.csv"
    frame.to_csv(path, index=False)
    compiled = _score(pipeline, path, tmp_path, 700, "path", has_target=True)
    fallback_pipeline = _copy(pipeline)  # a new object: the compiled trees are cached per object
    slow = forest_tables.MAX_TABLE_BYTES
    forest_tables.MAX_TABLE_BYTES = -1
    try:
        pandas_route = _score(fallback_pipeline, path, tmp_path, 700, "path", has_target=True)
    finally:
        forest_tables.MAX_TABLE_BYTES = slow
    pd.testing.assert_frame_equal(
        compiled.drop(columns=[*REASON_VALUES, "churn_probability"]),
        pandas_route.drop(columns=[*REASON_VALUES, "churn_probability"]),
    )
    np.testing.assert_allclose(
        compiled[["churn_probability", *REASON_VALUES]],
        pandas_route[["churn_probability", *REASON_VALUES]],
        rtol=0,
        atol=1e-12,
    )
    # round_trip: pandas' default parser can be a last digit off (see reasons.Attributor).
    inputs = pd.read_csv(path, dtype={ID: str}, float_precision="round_trip")
    np.testing.assert_allclose(
        compiled["churn_probability"], pipeline.churn_probability(inputs), atol=1e-12
    )
    assert compiled[TARGET].tolist() == (np.arange(3000) % 3 == 0).astype(int).tolist()
    # Only risk-raising contributions are reasons: a row has up to three, each with its log-odds.
    assert compiled[REASONS[0]].notna().mean() > 0.9
    assert (compiled[REASONS].isna().to_numpy() == compiled[REASON_VALUES].isna().to_numpy()).all()
    assert (compiled[REASON_VALUES].fillna(1.0) > 0).all().all()


def _copy(pipeline: ChurnPipeline) -> ChurnPipeline:
    """Another object for the same model (the compiled trees are cached per object)."""
    import copy

    return copy.deepcopy(pipeline)


def test_xgboost_has_no_zero_window() -> None:
    """LightGBM reads |x| <= 1e-35 as zero; XGBoost compares the value itself."""
    train = pd.DataFrame({"b": np.repeat([-2.0, -1.0, 0.0, 1.0, 2.0], 200)})
    model = xgb.XGBClassifier(n_estimators=1, max_depth=1, tree_method="hist")
    model.fit(train, (train["b"] < 0).astype(int))
    pre = TabularPreprocessor(numeric=["b"], categorical={}, names={"b": "b"})
    pipeline = ChurnPipeline(pre, model, "xgboost")
    compiled = PathAttribution(pipeline).compiled
    assert compiled is not None
    x = np.array([[-1e-38], [-1.0], [0.0], [1e-38]])
    _, margin = compiled.contributions(x)
    expected = model.predict(pd.DataFrame({"b": x[:, 0]}), output_margin=True)
    np.testing.assert_allclose(margin, expected, atol=1e-6)


def test_the_worked_example_in_the_docstring_holds() -> None:
    failed, tried = doctest.testmod(churnops_scorer.forest, report=True)
    assert (failed, tried > 5) == (0, True)
