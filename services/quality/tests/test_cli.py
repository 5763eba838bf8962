"""`churnops psi` and `churnops validate`: output, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churnops_common.cli import main
from churnops_common.settings import get_settings
from churnops_common.storage import object_store_from_settings
from churnops_common.synthetic import generate
from churnops_quality.baseline import build_baseline, save_baseline


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "ref": tmp_path / "ref.csv",
        "same": tmp_path / "same.parquet",
        "drifted": tmp_path / "drifted.csv",
        "broken": tmp_path / "broken.csv",
    }
    generate(1500, seed=1).to_csv(paths["ref"], index=False)
    generate(800, seed=2).to_parquet(paths["same"], index=False)
    generate(800, seed=3, drift=1.0).to_csv(paths["drifted"], index=False)
    paths["broken"].write_text("region;age\nnorth;41\n")
    return paths


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_psi_json(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["psi", str(files["ref"]), str(files["drifted"]), "--json"]) == 0
    result = _last_json(capsys)
    assert {"features", "max_psi", "threshold", "breached"} <= set(result)
    assert result["reference"] == str(files["ref"]) and result["breached"]
    assert "customer_id" not in result["features"] and "churned" not in result["features"]
    assert result["max_psi"] == max(result["features"].values()) > 0.2
    assert main(["psi", str(files["ref"]), str(files["same"]), "--json"]) == 0
    assert _last_json(capsys)["max_psi"] < 0.1


def test_psi_bad_input_is_one_line(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["psi", str(files["ref"]), str(files["broken"])]) == 2
    err = capsys.readouterr().err
    assert "wrong delimiter" in err and "Traceback" not in err
    assert main(["psi", str(files["ref"]), "missing.csv"]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err


def test_validate_exit_codes(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # No contract yet: nothing to validate a batch against, and the message says what to do.
    assert main(["validate", str(files["same"]), "--json"]) == 2
    assert "no data contract yet: train it first" in capsys.readouterr().err
    # A training set is checked on its own (it would become the contract).
    assert main(["validate", str(files["same"]), "--kind", "training", "--json"]) == 0
    assert _last_json(capsys)["status"] == "accepted"
    assert main(["validate", str(files["broken"]), "--kind", "training", "--json"]) == 1
    result = _last_json(capsys)
    assert result["status"] == "rejected" and "';'-delimited" in result["reason"]
    assert main(["validate", str(files["broken"]), "--kind", "training"]) == 1
    assert "rejected" in capsys.readouterr().err


def test_validate_against_the_baseline(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    settings = get_settings()
    store = object_store_from_settings(settings)
    store.ensure_buckets(settings.buckets)
    save_baseline(store, settings, *build_baseline(pd.read_csv(files["ref"]), settings, "ref", 1))
    assert main(["validate", str(files["drifted"]), "--json"]) == 0
    result = _last_json(capsys)
    assert result["baseline_version"] == 1 and result["max_psi"] > 0.2
    assert main(["validate", str(files["ref"]), "--kind", "nonsense"]) == 2
    # One argument: the batch against the model's stored baseline profile.
    assert main(["psi", str(files["drifted"]), "--json"]) == 0
    result = _last_json(capsys)
    assert result["reference"] == "baseline" and result["max_psi"] > 0.2


def test_user_text_is_printed_as_itself_not_as_markup(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A column named like Rich markup (`[/x]`, `[red]`) prints literally and crashes nothing."""
    hostile = {"[/x]": "[/x]", "[bold red]": "[bold red]"}
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    generate(800, seed=1).rename(columns={"age": "[/x]", "region": "[bold red]"}).to_csv(
        ref, index=False
    )
    generate(800, seed=3, drift=1.0).rename(columns={"age": "[/x]", "region": "[bold red]"}).to_csv(
        cur, index=False
    )
    assert main(["psi", str(ref), str(cur)]) == 0
    err = capsys.readouterr().err
    assert all(name in err for name in hostile) and "Traceback" not in err
    broken = tmp_path / "[red]broken.csv"
    broken.write_text("[/x];age\nnorth;41\n")
    assert main(["validate", str(broken), "--kind", "training"]) == 1
    err = capsys.readouterr().err
    assert "rejected" in err and "Traceback" not in err
    assert main(["psi", str(ref), str(tmp_path / "[/x]missing.csv")]) == 2
    assert "[/x]missing.csv: no such file" in capsys.readouterr().err
