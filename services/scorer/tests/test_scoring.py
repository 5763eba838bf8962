"""The scoring core without any service: values, reasons, chunking, column drift, summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from churnops_common.ml.economics import Economics
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.synthetic import generate
from churnops_common.tabular import read_chunks
from churnops_scorer.batch import BatchOutputs, score_stream
from churnops_scorer.path_attribution import PathAttribution
from churnops_scorer.reasons import ReasonMethod
from churnops_scorer.retention import RetentionList
from churnops_scorer.scoring import REASON_VALUES, REASONS, BatchInfo, ChunkScorer
from churnops_scorer.summary import ScoreSummary

from .conftest import ID, TARGET, batch_file

CONTRACT = [
    ID,
    "churn_probability",
    "risk_band",
    "model_name",
    "model_version",
    *REASONS,
    *REASON_VALUES,
    "input_object",
    "input_etag",
]


def _info(has_target: bool = False, floor: float = 0.0) -> BatchInfo:
    return BatchInfo(
        "churn-model",
        "7",
        "s3://landing/new_data/b.csv",
        "abc",
        ID,
        TARGET,
        has_target,
        reason_floor=floor,
    )


def _score(
    pipeline: ChurnPipeline,
    path: Path,
    tmp: Path,
    chunk_rows: int = 10_000,
    method: ReasonMethod = "shap",
    has_target: bool = False,
    start: int = 0,
    stop: int | None = None,
    floor: float = 0.0,
) -> pd.DataFrame:
    scorer = ChunkScorer(pipeline, _info(has_target, floor), method)
    out = tmp / f"out-{chunk_rows}-{method}-{start}.parquet"
    score_stream(
        scorer,
        read_chunks(path, chunk_rows, start, stop),
        BatchOutputs(out),
        RetentionList(ID, Economics(value_column="monthly_charges"), 10),
    )
    return pq.read_table(out).to_pandas()


def test_output_schema_and_values_are_the_models_own(
    pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    path = batch_file(tmp_path, 400, seed=5)
    out = _score(pipeline, path, tmp_path)
    inputs = pd.read_csv(path)
    assert list(out.columns) == CONTRACT
    assert out[ID].tolist() == inputs[ID].tolist()
    np.testing.assert_allclose(
        out["churn_probability"], pipeline.churn_probability(inputs), rtol=0, atol=1e-12
    )
    expected_band = np.where(
        out["churn_probability"] >= 0.6,
        "high",
        np.where(out["churn_probability"] >= 0.3, "medium", "low"),
    )
    assert (out["risk_band"] == expected_band).all()
    assert set(out["model_version"]) == {"7"} and set(out["input_etag"]) == {"abc"}


def test_reasons_are_the_top_three_risk_raising_contributions_above_the_floor(
    pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    path = batch_file(tmp_path, 300, seed=6)
    floor = 0.05
    out = _score(pipeline, path, tmp_path, floor=floor)
    contributions = pipeline.contributions(pd.read_csv(path))
    fewer = 0
    for i in range(len(out)):
        ranked = contributions.iloc[i].sort_values(ascending=False, kind="stable")
        ranked = ranked[ranked > floor].head(3)
        fewer += len(ranked) < 3
        named = [r for r in out.loc[i, REASONS].tolist() if isinstance(r, str)]
        assert named == ranked.index.tolist()
        np.testing.assert_allclose(
            out.loc[i, REASON_VALUES].dropna().to_numpy(dtype=float), ranked.to_numpy(), atol=1e-12
        )
    assert fewer > 0  # the floor did leave weak and risk-lowering contributions out
    assert (out[REASON_VALUES].dropna(how="all").fillna(1.0) > floor).all().all()
    both = out[["reason_1_log_odds", "reason_2_log_odds"]].dropna()
    assert (both["reason_1_log_odds"] >= both["reason_2_log_odds"]).all()


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_path_attribution_adds_up_to_the_models_margin(
    family: str, pipeline: ChurnPipeline, xgb_pipeline: ChurnPipeline
) -> None:
    chosen = pipeline if family == "lightgbm" else xgb_pipeline
    frame = generate(500, seed=9)
    features = chosen.preprocessor.transform(frame)
    values, probability = PathAttribution(chosen).contributions(features)
    # XGBoost adds its leaf values in float32; the compiled trees add the same leaves in float64.
    tolerance = 1e-12 if family == "lightgbm" else 1e-6
    np.testing.assert_allclose(probability, chosen.churn_probability(frame), rtol=0, atol=tolerance)
    assert values.shape == (500, len(chosen.input_columns))
    # It is a different attribution from SHAP, but it names the same leading reason mostly.
    shap = chosen.contributions(frame).to_numpy()
    top_shap = np.argsort(-shap, axis=1)[:, :3]
    in_top3 = np.mean([values[i].argmax() in top_shap[i] for i in range(len(shap))])
    assert in_top3 > 0.9


@pytest.mark.parametrize("method", ["shap", "path"])
def test_chunked_scoring_equals_unchunked(
    method: ReasonMethod, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    path = batch_file(tmp_path, 1000, seed=7, target=True)
    whole = _score(pipeline, path, tmp_path, chunk_rows=5000, method=method, has_target=True)
    chunked = _score(pipeline, path, tmp_path, chunk_rows=137, method=method, has_target=True)
    pd.testing.assert_frame_equal(whole, chunked)
    # Row ranges (what chunk tasks read) tile the file exactly.
    parts = [
        _score(
            pipeline, path, tmp_path, chunk_rows=90, method=method, has_target=True, start=a, stop=b
        )
        for a, b in ((0, 333), (333, 700), (700, None))
    ]
    pd.testing.assert_frame_equal(whole, pd.concat(parts, ignore_index=True))


def test_columns_in_another_order_or_with_extras_still_score(
    pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    frame = generate(300, seed=8).drop(columns=[TARGET])
    plain = tmp_path / "plain.csv"
    frame.to_csv(plain, index=False)
    shuffled = frame[list(reversed(frame.columns))].assign(extra_note="x", another=np.arange(300))
    odd = tmp_path / "odd.parquet"
    shuffled.to_parquet(odd, index=False)
    a, b = _score(pipeline, plain, tmp_path), _score(pipeline, odd, tmp_path)
    pd.testing.assert_frame_equal(a, b)


def test_ids_keep_leading_zeros_and_missing_id_gets_row_numbers(
    pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    frame = generate(50, seed=4).drop(columns=[TARGET])
    frame[ID] = [f"{i:05d}" for i in range(50)]
    path = tmp_path / "zeros.csv"
    frame.to_csv(path, index=False)
    assert _score(pipeline, path, tmp_path)[ID].tolist()[:2] == ["00000", "00001"]
    frame.drop(columns=[ID]).to_csv(path, index=False)
    assert _score(pipeline, path, tmp_path, chunk_rows=20)[ID].tolist()[:3] == ["0", "1", "2"]


def test_summary_matches_sklearn_and_numpy() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    p = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1)
    summary = ScoreSummary(high_threshold=0.6)
    for lo in range(0, 5000, 1234):  # chunked
        summary.add(p[lo : lo + 1234], y[lo : lo + 1234])
    stats = summary.stats()
    assert stats.roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-4)
    assert stats.pr_auc == pytest.approx(average_precision_score(y, p), abs=1e-4)
    assert stats.score_p50 == pytest.approx(np.quantile(p, 0.5, method="inverted_cdf"), abs=1e-5)
    assert stats.score_p90 == pytest.approx(np.quantile(p, 0.9, method="inverted_cdf"), abs=1e-5)
    assert stats.high_risk_share == pytest.approx((p >= 0.6).mean())
    unlabelled = ScoreSummary(high_threshold=0.6)
    unlabelled.add(p, None)
    assert unlabelled.stats().roc_auc is None


def test_retention_is_the_top_k_by_expected_profit(pipeline: ChurnPipeline, tmp_path: Path) -> None:
    path = batch_file(tmp_path, 600, seed=10)
    scorer = ChunkScorer(pipeline, _info(), "shap")
    economics = Economics(value_column="monthly_charges", value_multiplier=12.0)
    retention = RetentionList(ID, economics, 25)
    score_stream(scorer, read_chunks(path, 70), BatchOutputs(tmp_path / "r.parquet"), retention)
    inputs = pd.read_csv(path)
    p = pipeline.churn_probability(inputs)
    clv = inputs["monthly_charges"].to_numpy() * 12.0
    profit = p * (0.3 * (clv - 10) - 1) - (1 - p) * 11
    expected = inputs[ID].to_numpy()[np.argsort(-profit, kind="stable")[:25]]
    table = retention.table()
    assert table[ID].tolist() == expected.tolist()
    assert table["rank"].tolist() == list(range(1, 26))
    np.testing.assert_allclose(table["expected_profit"], np.sort(profit)[::-1][:25])
    assert table["reason_1"].notna().all()
