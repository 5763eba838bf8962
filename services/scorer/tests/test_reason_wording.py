"""The retention list's reasons read as an analyst needs them: the column, the customer's own
value (whatever encoding the model used inside), its unit, and only risk-raising reasons."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops_common.ml.economics import Economics
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.synthetic import generate
from churnops_common.tabular import read_chunks
from churnops_scorer.batch import BatchOutputs, score_stream
from churnops_scorer.reasons import ReasonWording
from churnops_scorer.retention import RetentionList
from churnops_scorer.scoring import REASONS, BatchInfo, ChunkScorer

from .conftest import ID, TARGET
from .test_calibrated_route import HANDLINGS, _calibrated

WORDED = re.compile(r"^(?P<column>.+?) = (?P<value>.*) \(raises churn odds x(?P<odds>\d+\.\d\d)\)$")
FLOOR = 0.05


def test_values_are_written_for_people() -> None:
    wording = ReasonWording({"tenure": "months"})
    assert wording.value("tenure", "2") == "2 months"
    assert wording.value("tenure", 2.0) == "2 months"
    assert wording.value("tenure", "1") == "1 month"
    assert wording.value("Contract", " Month-to-month ") == "Month-to-month"
    assert wording.value("TotalCharges", 1889.5) == "1889.5"
    assert wording.value("charges", 70.123456) == "70.12"
    assert wording.value("tenure", None) == "missing"
    assert wording.value("tenure", float("nan")) == "missing"
    assert wording.value("Contract", "  ") == "missing"
    assert wording.value("tenure", "unknown") == "unknown"  # a unit only after a number
    assert wording.value("note", "a\nb") == "a b"  # no line break inside a cell
    assert len(wording.value("note", "x" * 500)) == 40
    assert wording.reason("Contract", "Month-to-month", np.log(2.0)) == (
        "Contract = Month-to-month (raises churn odds x2.00)"
    )


def _retention(
    pipeline: ChurnPipeline, path: Path, tmp: Path, top_k: int, units: dict[str, str]
) -> pd.DataFrame:
    info = BatchInfo("m", "1", "file", "", ID, TARGET, False, reason_floor=FLOOR)
    scorer = ChunkScorer(pipeline, info, "path")
    economics = Economics(value_column="monthly_charges", value_multiplier=12.0)
    retention = RetentionList(ID, economics, top_k, ReasonWording(units))
    score_stream(scorer, read_chunks(path, 250), BatchOutputs(tmp / "p.parquet"), retention)
    text = retention.to_csv_bytes().decode()
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def _check_reasons(pipeline: ChurnPipeline, inputs: pd.DataFrame, listed: pd.DataFrame) -> int:
    """Every worded reason names an input column, the customer's value and raises the risk by
    more than the floor (checked against the model's own exact contributions)."""
    by_id = inputs.set_index(ID)
    contributions = pipeline.contributions(inputs).set_index(inputs[ID])
    worded = 0
    for _, row in listed.iterrows():
        for reason in REASONS:
            cell = row[reason]
            if not cell:
                continue
            match = WORDED.match(cell)
            assert match, cell
            column, value = match["column"], match["value"]
            assert column in pipeline.input_columns
            raw = by_id.loc[row[ID], column]
            expected = "missing" if pd.isna(raw) or not str(raw).strip() else str(raw).strip()
            assert re.sub(r" months?$", "", value) == expected, (cell, raw)
            # Path attribution and TreeSHAP differ in detail, never in sign for a leading reason.
            assert contributions.loc[row[ID], column] > 0, cell
            assert float(match["odds"]) > 1.0
            worded += 1
    return worded


def test_generated_batch_lists_values_and_only_risk_raising_reasons(
    pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    frame = generate(1200, seed=31).drop(columns=[TARGET])
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    listed = _retention(pipeline, path, tmp_path, 60, {"tenure_months": "months"})
    inputs = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert _check_reasons(pipeline, inputs, listed) >= 60
    # The worded reasons sit beside the profit cut's columns, best expected profit first.
    assert list(listed.columns) == [
        "rank",
        ID,
        "churn_probability",
        "risk_band",
        "value",
        "expected_profit",
        "contact",
        *REASONS,
    ]
    profit = listed["expected_profit"].astype(float)
    assert profit.is_monotonic_decreasing
    assert set(listed["contact"]) <= {"True", "False"}
    assert (listed["contact"] == "True").equals(profit > 0)
    tenure = [c for r in REASONS for c in listed[r] if c.startswith("tenure_months = ")]
    assert all(re.match(r"^tenure_months = \d+ months? ", c) for c in tenure)


@pytest.mark.parametrize("handling", HANDLINGS)
def test_reasons_map_back_to_the_input_whatever_the_encoding(handling: str, tmp_path: Path) -> None:
    pipeline = _calibrated("lightgbm", handling, "sigmoid")
    frame = generate(1500, seed=22, levels=50).drop(columns=[TARGET])
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    listed = _retention(pipeline, path, tmp_path, 300, {})
    inputs = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert _check_reasons(pipeline, inputs, listed) > 0
    area = [c for r in REASONS for c in listed[r] if c.startswith("area_code = ")]
    # The customer's own level, never a category code, encoded number or the rare bucket.
    assert area and all(re.match(r"^area_code = [A-Z]\d+ \(", c) for c in area)


def test_hostile_values_stay_text_in_spreadsheets(pipeline: ChurnPipeline, tmp_path: Path) -> None:
    frame = generate(400, seed=32).drop(columns=[TARGET])
    frame["contract"] = '=HYPERLINK("http://evil","x")'
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    listed = _retention(pipeline, path, tmp_path, 400, {})
    cells = [c for r in REASONS for c in listed[r] if c]
    assert cells and not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    raw = list(csv.reader(io.StringIO(listed.to_csv(index=False))))
    assert all(not cell.startswith("=") for row in raw for cell in row)


def test_a_missing_value_column_is_a_warning_naming_its_setting() -> None:
    retention = RetentionList(ID, Economics(value_column="monthly_charges", clv=150.0), 10)
    warning = retention.value_warning(["customerID", "MonthlyCharges", "tenure"])
    assert warning is not None
    assert "RETENTION_CLV (150)" in warning
    assert "RETENTION_VALUE_COLUMN" in warning and "'monthly_charges'" in warning
    assert "did you mean 'MonthlyCharges'" in warning
    assert retention.value_warning(["monthly_charges"]) is None
