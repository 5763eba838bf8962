"""A retention list of a Telco batch, scored after `churnops train` on Telco, reads as an analyst
needs it: `Contract = Month-to-month`, `tenure = 2 months`, and no risk-lowering reason."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from churnops_common.cli import main

from .test_contract import TELCO, _csv, _last_json, _split, _train

pytestmark = pytest.mark.slow

REASONS = ["reason_1", "reason_2", "reason_3"]
WORDED = re.compile(r"^(?P<column>.+?) = (?P<value>.*) \(raises churn odds x(?P<odds>\d+\.\d\d)\)$")


@pytest.fixture(autouse=True)
def _no_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUALITY_PDF_ENABLED", "false")
    monkeypatch.setenv("QUALITY_MLFLOW_ENABLED", "false")


def test_telco_retention_list_reads_like_an_analysts_notes(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, held = _split(datasets_dir, TELCO)
    assert _train(tmp_path, train, TELCO)[0] == 0
    capsys.readouterr()
    out = tmp_path / "out" / "predictions.csv"
    assert (
        main(["score", str(_csv(held, tmp_path / "batch.csv")), "--out", str(out), "--json"]) == 0
    )
    scored = _last_json(capsys)
    # Telco has MonthlyCharges, not the default value column: the list says how it ranked.
    assert any(
        "RETENTION_VALUE_COLUMN" in w and "did you mean 'MonthlyCharges'" in w
        for w in scored["warnings"]
    )

    retention = pd.read_csv(
        out.with_name("predictions-retention.csv"), dtype=str, keep_default_na=False
    )
    predictions = pd.read_csv(out, dtype={TELCO.id_column: str}).set_index(TELCO.id_column)
    batch = held.set_index(TELCO.id_column)
    cells = [c for r in REASONS for c in retention[r] if c]
    assert len(cells) >= len(retention)  # at least one reason per listed customer on average
    assert any(c.startswith("Contract = Month-to-month (raises churn odds x") for c in cells)
    tenure = [c for c in cells if c.startswith("tenure = ")]
    assert tenure and all(re.match(r"^tenure = \d+ months? \(", c) for c in tenure)
    for _, row in retention.iterrows():
        scored_row = predictions.loc[row[TELCO.id_column]]
        for n, reason in enumerate(REASONS, 1):
            if not row[reason]:
                assert pd.isna(scored_row[reason])
                continue
            match = WORDED.match(row[reason])
            assert match, row[reason]
            column = match["column"]
            # The same reason as the predictions file, raising the risk above the floor.
            assert scored_row[reason] == column
            assert scored_row[f"reason_{n}_log_odds"] > 0.05
            assert float(match["odds"]) > 1.0
            value = str(batch.loc[row[TELCO.id_column], column]).strip() or "missing"
            assert re.sub(r" months?$", "", match["value"]) == value
