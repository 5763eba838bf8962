"""On the holdouts of both shared datasets, scored by the champion under the default campaign
economics, the profit cut earns at least what the plain policies earn (top 10% by probability,
probability >= 0.5), and `churnops evaluate`'s EMPC is empulse's on the same labels and
probabilities. Skips without the datasets (they live beside the repository)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from empulse.metrics import empc_score

from churnops_common.cli import main
from churnops_common.ml.reference import LABEL, PROBABILITY, load_reference_set
from churnops_common.settings import get_settings

pytestmark = pytest.mark.slow

DATASETS = {
    "telco": ("telco/Telco-Customer-Churn.csv", "Churn", "customerID", ()),
    "bank": ("bank_churn/Churn_Modelling.csv", "Exited", "CustomerId", ("RowNumber", "Surname")),
}


@pytest.fixture(autouse=True)
def _no_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUALITY_PDF_ENABLED", "false")
    monkeypatch.setenv("QUALITY_MLFLOW_ENABLED", "false")


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(DATASETS))
def test_the_cut_beats_the_plain_policies_on_the_champions_holdout(
    name: str, datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    relative, target, id_column, drop = DATASETS[name]
    data = pd.read_csv(datasets_dir / relative, dtype={id_column: str})
    train = tmp_path / f"{name}.csv"
    data.to_csv(train, index=False)
    args = ["train", "--data", str(train), "--target", target, "--id", id_column]
    for column in drop:
        args += ["--drop", column]
    assert main([*args, "--trials", "3", "--json"]) == 0, capsys.readouterr().err
    trained = _last_json(capsys)
    assert trained["promoted"]

    holdout = load_reference_set(get_settings(), trained["model_version"])
    predictions, labels = tmp_path / "holdout.parquet", tmp_path / "outcomes.csv"
    holdout[[id_column, PROBABILITY]].to_parquet(predictions, index=False)
    holdout[[id_column, LABEL]].rename(columns={LABEL: target}).to_csv(labels, index=False)
    assert main(["evaluate", str(predictions), "--labels", str(labels), "--json"]) == 0
    result = _last_json(capsys)

    assert result["rows"] == len(holdout)
    assert result["empc"] == pytest.approx(
        empc_score(holdout[LABEL], holdout[PROBABILITY]), rel=1e-12
    )
    assert trained["holdout"]["empc"] == pytest.approx(result["empc"], abs=1e-6)
    print(name, {k: result[k] for k in ("contacted", "profit", "profit_top10", "profit_p50")})
    assert result["profit"] >= result["profit_top10"]
    assert result["profit"] >= result["profit_p50"]
