"""The ChurnPipeline contract the scorer relies on, for both model families."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.synthetic import generate
from churnops_trainer.search import SearchConfig, tune


def _messy(rows: int, seed: int) -> pd.DataFrame:
    frame = generate(rows, seed=seed).rename(
        columns={
            "monthly_charges": "Monthly Charges ($)",
            "contract": "contract [type]",
            "region": "région, zone",
        }
    )
    # Numbers stored as text with blanks, as in Telco's TotalCharges.
    total = frame["total_charges"].map(lambda v: " " if pd.isna(v) else f"{v:.2f}")
    return frame.assign(total_charges=total)


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "linear"])
def test_pipeline_contract_for_each_family(family: str) -> None:
    train = _messy(1200, seed=1)
    challenger = tune(
        train,
        train["churned"],
        ("churned", "customer_id"),
        SearchConfig(n_trials=2, families=(family,)),
    )  # type: ignore[arg-type]
    pipeline: ChurnPipeline = challenger.pipeline
    assert pipeline.family == family
    assert "total_charges" in pipeline.preprocessor.numeric
    assert {"customer_id", "churned"}.isdisjoint(pipeline.input_columns)

    batch = _messy(300, seed=2).drop(columns=["churned", "avg_weekly_usage_hours"])
    batch.loc[:10, "région, zone"] = "atlantis"  # a category never seen in training
    proba = pipeline.predict_proba(batch)
    assert proba.shape == (300, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(pipeline.predict(batch), (proba[:, 1] >= pipeline.threshold))

    contributions = pipeline.contributions(batch)
    assert list(contributions.columns) == pipeline.input_columns
    assert contributions.index.equals(batch.index)
    # Contributions plus one bias per row add up to the model's own log-odds (before the
    # calibrator, a monotone map: it never reorders rows).
    raw = pipeline.model.predict_proba(pipeline.preprocessor.transform(batch))[:, 1]
    margin = np.log(raw / (1.0 - raw))
    bias = margin - contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(bias, bias[0], atol=1e-4)
    order = np.argsort(raw, kind="stable")
    assert (np.diff(proba[order, 1]) >= -1e-12).all()
    np.testing.assert_allclose(proba[:, 1], pipeline.calibrated(raw))
