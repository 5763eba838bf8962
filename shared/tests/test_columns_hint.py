"""A mistyped column name: what it probably meant, then the columns (every one on request)."""

from __future__ import annotations

import pytest

from churnops_common import contract
from churnops_common.contract import columns_hint

TELCO = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
]  # fmt: skip


def test_a_late_column_is_named_and_suggested() -> None:
    hint = columns_hint(TELCO, "churn")
    assert hint.startswith("did you mean 'Churn'?")
    assert hint.endswith("TotalCharges, Churn")  # column 21 is listed, not cut at 12
    assert "did you mean 'MonthlyCharges'" in columns_hint(TELCO, "monthly_charges")


def test_a_wide_table_is_cut_until_every_column_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wide = [f"c{i}" for i in range(100)]
    assert "(+60 more: `churnops -v` lists all)" in columns_hint(wide, "x")
    monkeypatch.setattr(contract, "_EVERY_COLUMN", False)
    contract.list_every_column()
    assert columns_hint(wide, "x").endswith("c98, c99")
