"""Schema inference on synthetic and real data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnops_common.synthetic import generate
from churnops_quality.checks import check_file
from churnops_quality.schema import infer_schema


def test_roles_of_the_synthetic_table() -> None:
    schema = infer_schema(generate(500, seed=2), "customer_id", "churned")
    roles = {c.name: c.role for c in schema.columns}
    assert roles["customer_id"] == "id" and roles["churned"] == "target"
    assert roles["region"] == "categorical" and roles["monthly_charges"] == "numeric"
    region = schema.column("region")
    assert region is not None and region.categories == ["central", "east", "north", "south", "west"]
    assert {c.name for c in schema.features} == set(roles) - {"customer_id", "churned"}


def test_dates_text_and_constants() -> None:
    frame = pd.DataFrame(
        {
            "signup": pd.date_range("2024-01-01", periods=300, freq="D").strftime("%Y-%m-%d"),
            "note": [f"free text {i}" for i in range(300)],
            "country": ["NL"] * 300,
            "x": [i % 7 for i in range(300)],
            "row": range(1, 301),
        }
    )
    roles = {c.name: c.role for c in infer_schema(frame).columns}
    assert roles == {
        "signup": "datetime",
        "note": "text",
        "country": "constant",
        "x": "numeric",
        "row": "row_number",
    }
    schema = infer_schema(frame)
    assert [c.name for c in schema.features] == ["country", "x"]
    assert [c.name for c in schema.not_features] == ["signup", "note", "row"]


def test_row_numbers_are_told_from_numbers_and_customer_numbers() -> None:
    """A row number: distinct whole numbers in every row filling at least half their range,
    as in a file's own count or a sample of it (the training split of a numbered file)."""
    import numpy as np

    rng = np.random.default_rng(3)
    n = 1000
    sample = np.sort(rng.choice(np.arange(10_000, 10_000 + 1600), n, replace=False))
    frame = pd.DataFrame(
        {
            "Unnamed: 0": np.arange(n),  # pandas' index written with to_csv
            "RowNumber": rng.permutation(sample),  # 62% of a numbered file, shuffled
            "CustomerNumber": rng.choice(np.arange(15_000_000, 16_000_000), n, replace=False),
            "salary": rng.normal(50_000, 9_000, n).round(2),  # distinct, but not whole
            "with_gap": np.where(np.arange(n) == 5, np.nan, np.arange(n)),  # one missing
        }
    )
    roles = {c.name: c.role for c in infer_schema(frame).columns}
    assert roles == {
        "Unnamed: 0": "row_number",
        "RowNumber": "row_number",
        "CustomerNumber": "numeric",
        "salary": "numeric",
        "with_gap": "numeric",
    }
    small = pd.DataFrame({"n": range(50)})  # too few rows to tell a count from a feature
    assert infer_schema(small).columns[0].role == "numeric"


def test_telco_total_charges_is_numeric(datasets_dir: Path) -> None:
    path = datasets_dir / "telco" / "Telco-Customer-Churn.csv"
    frame = pd.read_csv(path)
    assert frame["TotalCharges"].dtype == object or str(frame["TotalCharges"].dtype) == "str"
    schema = infer_schema(frame)  # Telco's own names: recognised without settings
    assert schema.id_column == "customerID" and schema.target_column == "Churn"
    total = schema.column("TotalCharges")
    assert total is not None
    assert (total.role, total.stored_as_text) == ("numeric", True)
    assert total.null_rate == 11 / 7043  # the 11 blank values count as missing
    contract = schema.column("Contract")
    assert contract is not None and contract.role == "categorical"


def test_telco_as_a_training_set(datasets_dir: Path, embedded_settings) -> None:  # type: ignore[no-untyped-def]
    settings = embedded_settings.model_copy(
        update={"id_column": "customerID", "target_column": "Churn"}
    )
    path = datasets_dir / "telco" / "Telco-Customer-Churn.csv"
    result = check_file(path, "training", None, settings)
    assert result.verdict.status == "accepted", result.verdict.reason
    assert result.new_baseline is not None
    baseline = result.new_baseline[0]
    bins = baseline.profile.feature("TotalCharges")
    assert bins is not None and bins.kind == "quantile" and bins.ref_counts[-1] == 11
    # The same file against its own baseline: validated, PSI 0 everywhere.
    again = check_file(path, "new_data", baseline, settings)
    assert again.verdict.status == "accepted" and again.verdict.has_target
    assert again.psi is not None and again.psi.max_psi == 0.0
