"""One data contract from `churnops train` to every command and stage, on real churn data.

Train from the command line with no environment variables; then good and bad variants of a
held-out batch get the same verdict from `churnops validate` and when dropped into the
platform; `churnops score` writes the input's own ids and refuses what breaks the contract; a
second dataset is a second model name with its own champion.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from churnops_common.cli import main
from churnops_common.contract import load_contract
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import DataRejected
from churnops_common.settings import get_settings

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verdicts only: no PDF rendering or MLflow run per quality check (seconds each)."""
    monkeypatch.setenv("QUALITY_PDF_ENABLED", "false")
    monkeypatch.setenv("QUALITY_MLFLOW_ENABLED", "false")


@dataclass(frozen=True)
class Dataset:
    path: str
    target: str
    id_column: str
    drop: tuple[str, ...] = ()
    numeric: str = ""  # a numeric feature to put text into


TELCO = Dataset("telco/Telco-Customer-Churn.csv", "Churn", "customerID", numeric="tenure")
BANK = Dataset(
    "bank_churn/Churn_Modelling.csv",
    "Exited",
    "CustomerId",
    drop=("RowNumber", "Surname"),
    numeric="Balance",
)


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _train(
    tmp_path: Path, data: pd.DataFrame, dataset: Dataset, *extra: str
) -> tuple[int, list[str]]:
    train = tmp_path / f"train-{dataset.target}.csv"
    data.to_csv(train, index=False)
    args = ["train", "--data", str(train), "--target", dataset.target, "--id", dataset.id_column]
    for column in dataset.drop:
        args += ["--drop", column]
    return main([*args, "--trials", "2", *extra, "--json"]), args


def _split(datasets_dir: Path, dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.read_csv(datasets_dir / dataset.path, dtype={dataset.id_column: str})
    held = frame.sample(n=600, random_state=7)
    return frame.drop(held.index), held.drop(columns=[dataset.target])


Variant = Callable[[pd.DataFrame, Path], Path]


def _csv(frame: pd.DataFrame, path: Path, **options: object) -> Path:
    frame.to_csv(path, index=False, **options)  # type: ignore[call-overload]
    return path


def _variants(dataset: Dataset) -> dict[str, tuple[Variant, str]]:
    """name -> (how to write it from the held-out batch, expected status)."""
    first_feature = "gender" if dataset is TELCO else "Geography"

    def text_in_numeric(batch: pd.DataFrame, path: Path) -> Path:
        batch = batch.astype({dataset.numeric: "object"})
        batch.loc[batch.index[:3], dataset.numeric] = "twelve"
        return _csv(batch, path)

    def not_utf8(batch: pd.DataFrame, path: Path) -> Path:
        _csv(batch, path)
        path.write_bytes(path.read_bytes().replace(b"\n", "\n\xe9".encode("latin-1"), 5))
        return path

    return {
        "unchanged.csv": (lambda b, p: _csv(b, p), "accepted"),
        "unchanged.parquet": (lambda b, p: (b.to_parquet(p, index=False), p)[1], "accepted"),
        "shuffled.csv": (lambda b, p: _csv(b[list(reversed(b.columns))], p), "accepted"),
        "extra.csv": (lambda b, p: _csv(b.assign(campaign="spring"), p), "accepted"),
        "missing_feature.csv": (lambda b, p: _csv(b.drop(columns=[first_feature]), p), "rejected"),
        "text_in_numeric.csv": (text_in_numeric, "rejected"),
        "missing_id.csv": (lambda b, p: _csv(b.drop(columns=[dataset.id_column]), p), "rejected"),
        "header_only.csv": (lambda b, p: _csv(b.head(0), p), "rejected"),
        "empty.csv": (lambda b, p: (p.write_bytes(b""), p)[1], "rejected"),
        "not_utf8.csv": (not_utf8, "rejected"),
        "semicolons.csv": (lambda b, p: _csv(b, p, sep=";"), "rejected"),
    }


@pytest.mark.parametrize("dataset", [TELCO, BANK], ids=["telco", "bank"])
def test_trained_contract_decides_every_verdict(
    dataset: Dataset,
    datasets_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    train, held = _split(datasets_dir, dataset)
    status, _ = _train(tmp_path, train, dataset)
    assert status == 0, capsys.readouterr().err
    trained = _last_json(capsys)
    assert trained["contract"]["target"] == dataset.target
    assert trained["contract"]["id_column"] == dataset.id_column
    assert trained["baseline_version"] >= 1

    platform = EmbeddedPlatform(get_settings(), services={"quality"})
    for name, (write, expected) in _variants(dataset).items():
        path = write(held.copy(), tmp_path / name)
        code = main(["validate", str(path), "--json"])
        verdict = _last_json(capsys)
        assert (verdict["status"], code) == (expected, 0 if expected == "accepted" else 1), (
            name,
            verdict["reason"],
        )
        landed = platform.drop(path, "new_data")
        platform.run()
        outcome = platform.outcome_of(landed)
        dropped = "rejected" if isinstance(outcome, DataRejected) else "accepted"
        assert dropped == expected, (name, outcome)


def test_score_writes_the_inputs_ids_and_refuses_other_data(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, held = _split(datasets_dir, TELCO)
    assert _train(tmp_path, train, TELCO)[0] == 0
    capsys.readouterr()
    batch = _csv(held, tmp_path / "batch.csv")
    out = tmp_path / "out" / "predictions.csv"
    assert main(["score", str(batch), "--out", str(out), "--json"]) == 0
    scored = _last_json(capsys)
    assert scored["rows"] == len(held) and scored["id_column"] == TELCO.id_column
    predictions = pd.read_csv(out, dtype={TELCO.id_column: str})
    assert set(predictions[TELCO.id_column]) == set(held[TELCO.id_column])
    retention = pd.read_csv(out.with_name("predictions-retention.csv"), dtype=str)
    assert set(retention[TELCO.id_column]) <= set(held[TELCO.id_column])
    # The scoring run is recorded (`status` sees it) and estimated before any label lands.
    assert main(["status", "--json"]) == 0
    status = _last_json(capsys)
    assert status["scoring_runs"]
    [estimated] = status["estimated_performance"]
    assert estimated["pr_auc_estimated"] is not None and estimated["pr_auc_realized"] is None
    # `estimate` gives the same from the file, against the champion's reference set.
    assert main(["estimate", str(out.with_suffix(".csv")), "--json"]) == 0
    figures = _last_json(capsys)
    assert {"roc_auc", "pr_auc", "expected_churners", "bands"} <= set(figures)
    assert figures["pr_auc"] == pytest.approx(estimated["pr_auc_estimated"], abs=1e-6)

    semicolons = _csv(held, tmp_path / "semicolons.csv", sep=";")
    bank = pd.read_csv(datasets_dir / BANK.path).head(300)
    other = _csv(bank, tmp_path / "bank.csv")
    for refused, why in ((semicolons, "wrong delimiter"), (other, "customerID")):
        target = tmp_path / "out" / f"{refused.stem}.csv"
        assert main(["score", str(refused), "--out", str(target), "--json"]) == 1
        result = _last_json(capsys)
        assert result["status"] == "rejected" and why in result["reason"]
        assert not target.exists()


def test_second_dataset_is_a_second_model(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    telco, _ = _split(datasets_dir, TELCO)
    bank, _ = _split(datasets_dir, BANK)
    assert _train(tmp_path, telco, TELCO)[0] == 0
    # Another dataset under the same name would silently replace the champion: refused.
    assert _train(tmp_path, bank, BANK)[0] == 2
    assert "train it with --name" in capsys.readouterr().err
    assert _train(tmp_path, bank, BANK, "--name", "bank-churn")[0] == 0
    assert _last_json(capsys)["promoted"] is True

    from churnops_scorer.models import champion_version

    settings = get_settings()
    bank_settings = settings.model_copy(update={"mlflow_model_name": "bank-churn"})
    assert champion_version(settings) == "1" and champion_version(bank_settings) == "1"
    from churnops_common.storage import object_store_from_settings

    store = object_store_from_settings(settings)
    telco_contract = load_contract(store, settings)
    bank_contract = load_contract(store, bank_settings)
    assert telco_contract is not None and bank_contract is not None
    assert (telco_contract.target_column, bank_contract.target_column) == ("Churn", "Exited")
