"""`churnops score`: local pipelines and the registry's champion, JSON output, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from churnops_common.cli import main
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.settings import Settings

from .conftest import ID, batch_file, register_champion


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    lines = capsys.readouterr().out.strip().splitlines()
    return dict(json.loads(lines[-1]))


def test_score_with_a_local_joblib_pipeline(
    pipeline: ChurnPipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.joblib"
    joblib.dump(pipeline, model)
    data = batch_file(tmp_path, 400, seed=41)
    out = tmp_path / "out" / "scored.csv"
    assert main(["score", str(data), "--out", str(out), "--model", str(model), "--json"]) == 0
    result = _last_json(capsys)
    assert result["rows"] == 400 and result["model_version"] == "local"
    assert isinstance(result["seconds"], float)
    scored = pd.read_csv(out, dtype={ID: str})
    np.testing.assert_allclose(
        scored["churn_probability"], pipeline.churn_probability(pd.read_csv(data)), atol=1e-12
    )
    assert len(pd.read_csv(out.with_name("scored-retention.csv"))) == 400


@pytest.fixture
def command_champion(
    pipeline: ChurnPipeline, scorer_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A registered champion (its version) that a `churnops` command finds from the
    environment."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(scorer_settings.mlflow_tracking_uri))
    monkeypatch.setenv("MLFLOW_MODEL_NAME", scorer_settings.mlflow_model_name)
    return register_champion(scorer_settings, pipeline, None)


def test_score_defaults_to_the_champion(
    command_champion: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = command_champion
    data = batch_file(tmp_path, 100, seed=42, name="b.parquet")
    out = tmp_path / "scored.parquet"
    assert main(["score", str(data), "--out", str(out), "--json"]) == 0
    result = _last_json(capsys)
    assert (result["status"], result["rows"], result["model_version"]) == ("scored", 100, version)
    assert result["contract"] is None  # a champion registered without a training set
    assert pd.read_parquet(out)["model_version"].unique().tolist() == [version]


def test_score_parses_the_file_once_for_quality_and_the_scorer(
    command_champion: str,
    tmp_path: Path,
    parsed_files: list[Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Quality's check reads the landed file whole; the scoring pass takes its columns from
    that read (the two run on their own platforms, in one `shared_reads` block)."""
    data = batch_file(tmp_path, 300, seed=43)
    out = tmp_path / "scored.parquet"
    assert main(["score", str(data), "--out", str(out), "--json"]) == 0
    assert _last_json(capsys)["rows"] == 300
    assert len(parsed_files) == 1
    assert len(pd.read_parquet(out)) == 300


def test_score_hands_its_follow_ups_to_a_detached_process(
    command_champion: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command returns with its outputs; the scored file's quality report and the
    monitor's delivery of its BatchScored follow from one process of its own, recorded like a
    worker's: the report on the file's quality run."""
    import time

    from sqlalchemy import select

    from churnops_common.background import log_path
    from churnops_common.db.engine import make_engine
    from churnops_common.db.tables import quality_runs

    monkeypatch.setenv("COMMAND_REPORTS", "background")
    data = batch_file(tmp_path, 100, seed=43, name="b.csv")
    assert main(["score", str(data), "--out", str(tmp_path / "scored.parquet"), "--json"]) == 0
    assert _last_json(capsys)["status"] == "scored"
    settings = Settings()
    log = log_path(settings)
    deadline = time.monotonic() + 180  # the child imports the quality stack: seconds, not ms
    while "deliveries done" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
        time.sleep(0.5)
    assert "2 handed-over deliveries done" in log.read_text(), log.read_text()
    assert "churnops.monitor.on_batch_scored" in log.read_text(), log.read_text()
    with make_engine(settings.monitoring_url()).connect() as conn:
        uri = conn.execute(select(quality_runs.c.report_uri)).scalar()
    assert uri is not None and uri.endswith("report.html"), log.read_text()


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "bogus.joblib"
    bogus.write_text("not a pickle")
    data = batch_file(tmp_path, 10, seed=43)
    assert main(["score", str(tmp_path / "missing.csv"), "--out", "x.csv"]) == 2
    assert main(["score", str(data), "--out", "x.txt"]) == 2
    assert main(["score", str(data), "--out", "x.csv", "--model", str(bogus)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "does not exist" in err and "must end in .parquet or .csv" in err
    assert "not a readable joblib file" in err
