"""`churnops evaluate` on synthetic, calibrated scores (no dataset needed): the figures are
empulse's and sklearn's own, and the profit cut earns at least what the plain policies earn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from empulse.metrics import empc_score, mpc_score
from sklearn.metrics import average_precision_score, roc_auc_score

from churnops_common.cli import main
from churnops_common.settings import get_settings

KEYS = ("roc_auc", "pr_auc", "brier", "ece", "empc", "mp", "contact_rate")
PROFITS = ("profit", "profit_top10", "profit_p50")


def _files(tmp_path: Path, rows: int = 4000, seed: int = 0) -> tuple[Path, Path, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 4.0, rows)  # a churn-like spread: most customers unlikely to leave
    y = (rng.random(rows) < p).astype(int)  # calibrated by construction
    ids = [f"C{i:05d}" for i in range(rows)]
    predictions = tmp_path / "predictions.parquet"
    pd.DataFrame({"customer_id": ids, "churn_probability": p}).to_parquet(predictions)
    labels = tmp_path / "labels.csv"
    outcome = np.where(y == 1, "yes", "no")  # any spelling of the target vocabulary
    pd.DataFrame({"customer_id": ids, "churned": outcome}).iloc[::-1].to_csv(labels, index=False)
    return predictions, labels, pd.DataFrame({"p": p, "y": y})


def _evaluate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["evaluate", *args, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


def test_evaluate_reports_empulse_figures_and_the_cut_beats_plain_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictions, labels, truth = _files(tmp_path)
    code, result = _evaluate(capsys, str(predictions), "--labels", str(labels))
    assert code == 0
    assert set(KEYS) | set(PROFITS) <= set(result)
    y, p = truth["y"].to_numpy(), truth["p"].to_numpy()
    assert result["empc"] == pytest.approx(empc_score(y, p), rel=1e-12)
    assert result["mp"] == pytest.approx(mpc_score(y, p), rel=1e-12)
    assert result["contact_rate"] == pytest.approx(empc_score.optimal_rate(y, p))
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert result["pr_auc"] == pytest.approx(average_precision_score(y, p))
    # The realized profit by hand: a contacted churner brings 0.3 * (200 - 10) - 1, any other
    # contact costs 10 + 1; the cut contacts everyone above the break-even 11 / 67.
    cut = p > 11 / 67
    expected = np.where(y[cut] == 1, 0.3 * 190 - 1, -11.0).sum()
    assert result["contacted"] == cut.sum()
    assert result["profit"] == pytest.approx(expected)
    assert result["contacted_top10"] == 400 and result["contacted_p50"] == (p >= 0.5).sum()
    assert result["profit"] >= result["profit_top10"]
    assert result["profit"] >= result["profit_p50"]


def test_a_capacity_bounds_the_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    predictions, labels, _ = _files(tmp_path, seed=1)
    monkeypatch.setenv("RETENTION_CAPACITY", "100")
    _, result = _evaluate(capsys, str(predictions), "--labels", str(labels))
    assert result["contacted"] == 100
    monkeypatch.setenv("RETENTION_CAPACITY", "0")
    get_settings.cache_clear()
    _, nobody = _evaluate(capsys, str(predictions), "--labels", str(labels))
    assert (nobody["contacted"], nobody["profit"]) == (0, 0.0)
    assert nobody["empc"] == result["empc"]  # a model measure, not the campaign's


def test_one_class_and_bad_files_are_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictions, _, _ = _files(tmp_path, rows=50)
    stayed = tmp_path / "stayed.csv"
    ids = pd.read_parquet(predictions)["customer_id"]
    pd.DataFrame({"customer_id": ids, "churned": 0}).to_csv(stayed, index=False)
    code, result = _evaluate(capsys, str(predictions), "--labels", str(stayed))
    assert code == 0 and result["roc_auc"] is None and result["empc"] is None
    assert result["profit_p50"] <= 0  # contacting anyone who stays only costs

    other = tmp_path / "other.csv"
    pd.DataFrame({"customer_id": ["x1", "x2"], "churned": [0, 1]}).to_csv(other, index=False)
    assert main(["evaluate", str(predictions), "--labels", str(other)]) == 2
    assert "no id of other.csv" in capsys.readouterr().err
    wrong = tmp_path / "wrong.csv"
    pd.DataFrame({"customer_id": ids, "churned": "maybe"}).to_csv(wrong, index=False)
    assert main(["evaluate", str(predictions), "--labels", str(wrong)]) == 2
    assert "outside the target vocabulary" in capsys.readouterr().err
    assert main(["evaluate", str(predictions), "--labels", str(tmp_path / "none.csv")]) == 2
