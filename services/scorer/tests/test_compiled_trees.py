"""The compiled trees (bit-vector tables) against LightGBM itself, and the Arrow feature matrix
against the pipeline's own preprocessing: same numbers, edge values included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xgboost as xgb

from churnops_common.ml.pipeline import ChurnPipeline, TabularPreprocessor
from churnops_common.synthetic import generate
from churnops_common.tabular import read_chunks
from churnops_scorer import forest_tables, kernels
from churnops_scorer.features import FeatureMatrix, numbers
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


@pytest.mark.parametrize("depth", [4, 8])
def test_xgboost_tables_land_in_xgboosts_own_leaves(depth: int) -> None:
    train = generate(3000, seed=13)
    pre = TabularPreprocessor.fit(train, exclude=(ID, TARGET))
    model = xgb.XGBClassifier(
        n_estimators=30, max_depth=depth, enable_categorical=True, tree_method="hist", n_jobs=1
    )
    model.fit(pre.transform(train), train[TARGET])
    pipeline = ChurnPipeline(pre, model, "xgboost", id_column=ID, target_column=TARGET)
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


def _without_tables(pipeline: ChurnPipeline) -> PathAttribution:
    budget = forest_tables.MAX_TABLE_BYTES
    forest_tables.MAX_TABLE_BYTES = -1
    try:
        attribution = PathAttribution(pipeline)
    finally:
        forest_tables.MAX_TABLE_BYTES = budget
    assert attribution.compiled is None
    return attribution


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


def test_top_k_breaks_ties_by_column_order() -> None:
    values = np.array([[1.0, 3.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0], [-1.0, -2.0, 5.0, -1.0]])
    index, top = kernels.top_k(values, 3)
    assert index.tolist() == [[1, 2, 3], [0, 1, 2], [2, 0, 3]]
    assert top.tolist() == [[3.0, 3.0, 2.0], [0.0, 0.0, 0.0], [5.0, -1.0, -1.0]]


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
