from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops_common.synthetic import generate


def test_same_seed_same_table_other_seed_other_table() -> None:
    pd.testing.assert_frame_equal(generate(500, seed=3), generate(500, seed=3))
    assert not generate(500, seed=3).equals(generate(500, seed=4))


def test_shape_rates_and_missing_values() -> None:
    frame = generate(20_000, seed=1)
    assert frame["customer_id"].is_unique
    assert 0.15 <= frame["churned"].mean() <= 0.25
    assert set(frame["churned"].unique()) == {0, 1}
    assert frame["satisfaction_score"].isna().mean() > 0.02
    assert frame["region"].nunique() == 5
    drifted = generate(20_000, seed=1, drift=1.0)
    assert 0.15 <= drifted["churned"].mean() <= 0.30
    assert drifted["monthly_charges"].mean() > frame["monthly_charges"].mean() + 10
    assert (drifted["contract"] == "month-to-month").mean() > (
        frame["contract"] == "month-to-month"
    ).mean() + 0.15


def test_columns_are_documented() -> None:
    from pathlib import Path

    docs = pd.read_csv(Path(__file__).resolve().parents[2] / "data" / "data_descriptions.csv")
    assert list(docs["column"]) == list(generate(10).columns)


def _xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Features (text as categories) and the target, for a quick model of a table."""
    features = frame.drop(columns=["customer_id", "churned"])
    for column in features.columns:
        if not pd.api.types.is_numeric_dtype(features[column]):
            features[column] = features[column].astype("category")
    return features, frame["churned"].to_numpy()


@pytest.mark.slow
def test_a_model_trained_before_drift_degrades_and_retraining_recovers() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score

    model_args = {"categorical_features": "from_dtype", "random_state": 0}
    x_ref, y_ref = _xy(generate(15_000, seed=1))
    x_new, y_new = _xy(generate(15_000, seed=2, drift=1.0))
    x_test, y_test = _xy(generate(5_000, seed=3, drift=1.0))
    before = HistGradientBoostingClassifier(**model_args).fit(x_ref, y_ref)
    after = HistGradientBoostingClassifier(**model_args).fit(x_new, y_new)
    pr_before = average_precision_score(y_test, before.predict_proba(x_test)[:, 1])
    pr_after = average_precision_score(y_test, after.predict_proba(x_test)[:, 1])
    assert pr_after > pr_before + 0.08


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="rows"):
        generate(0)
    with pytest.raises(ValueError, match="drift"):
        generate(10, drift=1.5)


def test_levels_add_a_risky_high_cardinality_column_and_leave_the_others() -> None:
    plain = generate(3000, seed=5)
    wide = generate(3000, seed=5, levels=50)
    assert wide["area_code"].nunique() == 50
    counts = wide["area_code"].value_counts()
    assert counts.max() > 10 * counts.min()  # a long tail of rare levels
    pd.testing.assert_frame_equal(
        wide.drop(columns=["area_code", "churned"]), plain.drop(columns="churned")
    )
    rates = wide.groupby("area_code")["churned"].mean()
    assert rates[counts.index[:10]].std() > 0.05  # the levels carry risk


def test_loyalty_moves_who_the_customers_are_not_how_they_churn() -> None:
    """A covariate shift only: the same customers, moved toward established ones, and a churn
    model of the unshifted table stays calibrated on the shifted one."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    usual, loyal = generate(20_000, seed=7), generate(20_000, seed=7, loyalty=1.0)
    assert loyal["tenure_months"].mean() > usual["tenure_months"].mean() + 10
    assert (loyal["contract"] == "two-year").mean() > (usual["contract"] == "two-year").mean()
    assert loyal["churned"].mean() < usual["churned"].mean() / 2  # fewer churners to find
    x, y = _xy(usual)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    x_loyal, y_loyal = _xy(generate(20_000, seed=8, loyalty=1.0))
    predicted = model.fit(x, y).predict_proba(x_loyal)[:, 1]
    # Same mechanism: the expected churners match the realized ones, up to how well a tree
    # model fitted elsewhere extrapolates into the sparse corner of loyal customers.
    assert abs(predicted.sum() / y_loyal.sum() - 1) < 0.2
    with pytest.raises(ValueError, match="loyalty"):
        generate(10, loyalty=-0.1)
