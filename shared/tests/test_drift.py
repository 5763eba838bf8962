"""The drift verdict's wording, score PSI, report names and Evidently's column types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops_common.contract import ColumnSpec, Schema
from churnops_common.drift import DriftVerdict, headline, psi_value, score_psi
from churnops_common.evidently_drift import column_types, inert, prepare
from churnops_common.report_names import file_label, quality_folder


def test_headline_says_the_verdict_and_the_next_step_in_words() -> None:
    psi = {"a": 0.5, "b": 0.2, "c": 0.19, "d": 0.0}
    verdict = DriftVerdict(psi, 0.2)
    assert list(verdict.drifted) == ["a", "b"]  # worst first; the threshold itself is drift
    assert headline("accepted", verdict, "retrain requested") == (
        "accepted, drift in 2 of 4 features: retrain requested"
    )
    assert headline("accepted", DriftVerdict({"a": 0.1}, 0.2)) == "accepted, no drift"
    assert headline("accepted", None, "training requested") == "accepted: training requested"
    assert headline("rejected", verdict, reason="no id column") == "rejected: no id column"


def test_score_psi_is_zero_for_the_same_scores_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.beta(2, 5, 5000)
    assert score_psi(reference, reference) == pytest.approx(0.0)
    same = score_psi(reference, rng.beta(2, 5, 5000))
    shifted = score_psi(reference, np.clip(rng.beta(2, 5, 5000) + 0.2, 0, 1))
    assert same < 0.05 < 0.2 < shifted
    # On the reference's deciles, each bin holds a tenth of the reference.
    edges = np.quantile(reference, np.linspace(0.1, 0.9, 9))
    cur = np.bincount(np.searchsorted(edges, reference + 0.2, side="right"), minlength=10)
    assert shifted == pytest.approx(psi_value(np.full(10, 0.1), cur / 5000), rel=0.2)
    with pytest.raises(ValueError, match="both sides"):
        score_psi(reference, np.array([np.nan]))


def test_report_folders_are_named_after_the_file_whatever_its_name() -> None:
    assert file_label("new_data/batch-0005-drifted.csv") == "batch-0005-drifted"
    hostile = "new_data/<img src=x onerror=alert(1)> é.csv"
    assert file_label(hostile) == "img-src-x-onerror-alert-1"
    assert file_label("new_data/....csv") == "csv"
    assert file_label("new_data/???.csv") == "file"
    assert file_label("a/" + "x" * 300 + ".parquet") == "x" * 80
    assert quality_folder("new_data/Batch 1.csv", "q-1") == "quality/Batch-1/q-1"


def test_evidently_column_types_follow_the_contract() -> None:
    """Telco's TotalCharges is numbers stored as text (with blanks): numeric, not categorical."""
    frame = pd.DataFrame(
        {
            "TotalCharges": ["29.85", " ", "1889.5"],
            "Contract": ["Month-to-month", "One year", "Two year"],
            "SeniorCitizen": [0, 1, 0],
            "Empty": [None, None, None],
        }
    )
    schema = Schema(
        id_column="customerID",
        target_column="Churn",
        rows=3,
        columns=[
            ColumnSpec(name="TotalCharges", role="numeric", dtype="float64", stored_as_text=True),
            ColumnSpec(name="Contract", role="categorical", dtype="object"),
            ColumnSpec(name="SeniorCitizen", role="categorical", dtype="int64"),
            ColumnSpec(name="Empty", role="numeric", dtype="float64"),
        ],
    )
    columns = list(frame.columns)
    numeric, categorical = column_types(schema, columns, frame, frame)
    assert numeric == ["TotalCharges"]
    assert categorical == ["Contract", "SeniorCitizen", "Empty"]  # no number at all: as text
    prepared = prepare(frame, numeric, categorical)
    assert prepared["TotalCharges"].tolist()[::2] == [29.85, 1889.5]
    assert np.isnan(prepared["TotalCharges"][1])
    # Without a contract, a column is numeric only when both sides hold numbers.
    _, guessed = column_types(None, ["TotalCharges", "SeniorCitizen"], frame, frame)
    assert guessed == ["TotalCharges"]
    assert inert("</script>") == "\uff1c/script\uff1e"
