"""Calibrated pipelines through the compiled trees: the same probabilities as the pipeline's own
predict_proba, and reasons that still name input columns, for every categorical handling the
trainer can choose (native categories, one-vs-rest splits, target encoding, grouped levels)."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression

from churnops_common.ml.pipeline import (
    RARE_LEVEL,
    Calibrator,
    ChurnPipeline,
    LinearModel,
    TabularPreprocessor,
)
from churnops_common.synthetic import generate
from churnops_scorer.path_attribution import PathAttribution
from churnops_scorer.scoring import REASONS

from .conftest import ID, TARGET
from .test_scoring import _score

HANDLINGS = ["native", "onehot", "target"]


def _encoding(pre: TabularPreprocessor, train: pd.DataFrame, column: str) -> list[float]:
    """A smoothed churn rate per category (what the trainer's target encoding stores)."""
    codes = pre.transform(train)[pre.names[column]].cat.codes
    y = train[TARGET].to_numpy()
    prior = float(y.mean())
    table = []
    for code in range(len(pre.categorical[column])):
        hits = y[codes.to_numpy() == code]
        table.append(float((hits.sum() + 10 * prior) / (len(hits) + 10)))
    return [*table, prior]


def _calibrated(family: str, handling: str, method: str) -> ChurnPipeline:
    train = generate(3000, seed=21, levels=50)
    pre = TabularPreprocessor.fit(train, exclude=(ID, TARGET), min_level_rows=20)
    assert RARE_LEVEL in pre.categorical["area_code"] and pre.grouped["area_code"]
    if handling == "target":
        pre = pre.with_encoding({"area_code": _encoding(pre, train, "area_code")})
    features = pre.transform(train)
    extra = {"max_cat_to_onehot": 64} if handling == "onehot" else {}
    model: lgb.LGBMClassifier | xgb.XGBClassifier
    if family == "lightgbm":
        model = lgb.LGBMClassifier(
            n_estimators=30, num_leaves=15, verbose=-1, random_state=0, n_jobs=1, **extra
        )
    else:
        model = xgb.XGBClassifier(
            n_estimators=30,
            max_depth=4,
            enable_categorical=True,
            tree_method="hist",
            n_jobs=1,
            scale_pos_weight=3.0,  # probabilities off on purpose: calibration has work to do
            **extra,
        )
    model.fit(features, train[TARGET])
    raw = model.predict_proba(features)[:, 1]
    calibrator = (
        _isotonic(train[TARGET].to_numpy(), raw)
        if method == "isotonic"
        else Calibrator("sigmoid", slope=0.8, intercept=-0.4)
    )
    return ChurnPipeline(
        pre, model, family, id_column=ID, target_column=TARGET, calibrator=calibrator
    )  # type: ignore[arg-type]


def _isotonic(y: np.ndarray, p: np.ndarray) -> Calibrator:
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
    return Calibrator(
        "isotonic", x=tuple(iso.X_thresholds_.tolist()), y=tuple(iso.y_thresholds_.tolist())
    )


def _steepest(calibrator: Calibrator | None) -> float:
    if calibrator is None or calibrator.method != "isotonic":
        return 1.0
    x, y = np.asarray(calibrator.x), np.asarray(calibrator.y)
    step = np.diff(x) > 0
    return max(1.0, float(np.max(np.diff(y)[step] / np.diff(x)[step])))


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("handling", HANDLINGS)
@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_compiled_route_gives_the_pipelines_calibrated_probability(
    family: str, handling: str, method: str, tmp_path: Path
) -> None:
    pipeline = _calibrated(family, handling, method)
    assert PathAttribution.of(pipeline).compiled is not None  # the fast route, not a fallback
    frame = generate(1500, seed=22, levels=50).drop(columns=[TARGET])
    frame["area_code"] = frame["area_code"].astype(object)
    frame.loc[frame.index[::13], "area_code"] = "Z999"  # unseen
    frame.loc[frame.index[::17], "area_code"] = None
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    out = _score(pipeline, path, tmp_path, 400, "path")
    inputs = pd.read_csv(path, dtype={ID: str}, float_precision="round_trip")
    expected = pipeline.churn_probability(inputs)
    # XGBoost adds its leaf values in float32; the compiled trees add the same leaves in float64:
    # about 1e-7 apart before calibration, as far apart as the calibrator's steepest slope makes.
    tolerance = 1e-12 if family == "lightgbm" else 1e-6 * _steepest(pipeline.calibrator)
    np.testing.assert_allclose(out["churn_probability"], expected, rtol=0, atol=tolerance)
    raw = pipeline.model.predict_proba(pipeline.preprocessor.transform(inputs))[:, 1]
    assert not np.allclose(expected, raw, atol=1e-3)  # the calibrator did change them
    # Reasons are input columns, the high-cardinality one included however it was encoded.
    named = set(out[REASONS].stack().dropna())
    assert named <= set(pipeline.input_columns) and "area_code" in named


def test_a_linear_pipeline_scores_with_its_exact_contributions(tmp_path: Path) -> None:
    train = generate(2000, seed=23, levels=50)
    pre = TabularPreprocessor.fit(train, exclude=(ID, TARGET), min_level_rows=20)
    features = pre.transform(train)
    model = LinearModel(c=1.0, pos_weight=2.0).fit(features, train[TARGET])
    calibrator = Calibrator("sigmoid", slope=0.9, intercept=-0.3)
    pipeline = ChurnPipeline(
        pre, model, "linear", id_column=ID, target_column=TARGET, calibrator=calibrator
    )
    path = tmp_path / "batch.csv"
    generate(800, seed=24, levels=50).drop(columns=[TARGET]).to_csv(path, index=False)
    out = _score(pipeline, path, tmp_path, 300, "path")
    inputs = pd.read_csv(path, dtype={ID: str}, float_precision="round_trip")
    np.testing.assert_allclose(
        out["churn_probability"], pipeline.churn_probability(inputs), rtol=0, atol=1e-12
    )
    contributions = pipeline.contributions(inputs)
    margin = model.margin(pre.transform(inputs))
    np.testing.assert_allclose(contributions.sum(axis=1) + model.bias, margin, atol=1e-9)
    assert (out["reason_1"] == contributions.idxmax(axis=1)).all()
