from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from churnops_common.cli import main


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_generate_writes_csv_and_parquet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            ["generate", "--rows", "300", "--seed", "2", "--out", str(tmp_path / "a.csv"), "--json"]
        )
        == 0
    )
    result = _last_json(capsys)
    assert result["rows"] == 300
    assert len(pd.read_csv(tmp_path / "a.csv")) == 300
    assert (
        main(
            [
                "generate",
                "--rows",
                "50",
                "--drift",
                "1",
                "--no-target",
                "--out",
                str(tmp_path / "b.parquet"),
            ]
        )
        == 0
    )
    assert "churned" not in pd.read_parquet(tmp_path / "b.parquet").columns


def test_user_errors_are_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--rows", "10", "--out", str(tmp_path / "a.txt")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and ".csv or .parquet" in err and "Traceback" not in err
    assert main(["generate", "--rows", "0", "--out", str(tmp_path / "a.csv")]) == 2


def test_stack_mode_without_secrets_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CHURNOPS_MODE", "stack")
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "POSTGRES_PASSWORD" in err and "Traceback" not in err


def test_db_upgrade_embedded_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--json"]) == 0
    assert "001_monitoring_schema" in _last_json(capsys)["applied"]
    assert main(["db", "upgrade", "--json"]) == 0
    assert _last_json(capsys)["applied"] == []


def test_drop_embedded_and_bad_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "x.csv"
    source.write_text("customer_id,age\nC1,3\n")
    assert main(["drop", str(source), "--kind", "bogus"]) == 2
    assert "--kind must be one of" in capsys.readouterr().err
    assert main(["drop", str(source), "--kind", "new_data", "--json"]) == 0
    result = _last_json(capsys)
    assert result["object"] == "s3://landing/new_data/x.csv"
    assert result["events"][0] == "DataLanded"


def test_request_and_dead_letters_and_replay(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["request", "nonsense"]) == 2
    assert "request must be one of" in capsys.readouterr().err
    assert main(["request", "sweep", "--json"]) == 0
    assert _last_json(capsys)["published"] == "SweepRequested"
    assert main(["dead-letters", "--json"]) == 0
    assert isinstance(_last_json(capsys)["dead_letters"], list)
    assert main(["replay", "999999"]) == 2
    assert "no dead letter with id 999999" in capsys.readouterr().err


def test_replay_publishes_a_parked_event_again(capsys: pytest.CaptureFixture[str]) -> None:
    from churnops_common.db.engine import make_engine
    from churnops_common.db.ledger import Ledger
    from churnops_common.db.migrations import upgrade
    from churnops_common.events import MonitoringRequested, to_wire
    from churnops_common.settings import get_settings

    engine = make_engine(get_settings().monitoring_url())
    upgrade(engine)
    event = MonitoringRequested()
    Ledger(engine).dead_letter(
        "churnops.monitor.on_monitoring_requested",
        to_wire(event),
        "S3 was down for too long",
        event=event,
    )
    assert main(["dead-letters", "--json"]) == 0
    [parked] = _last_json(capsys)["dead_letters"]
    assert parked["error"] == "S3 was down for too long"
    assert main(["replay", str(parked["id"]), "--json"]) == 0
    result = _last_json(capsys)
    assert result["event_id"] == event.event_id
    assert result["handled"] == 1  # delivered to the task that parked it, and only to it


def test_config_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.example.com/services/T0/B0/s3cr3t")
    monkeypatch.setenv("MONITORING_DB_URL", "postgresql+psycopg://churnops:pgs3cr3t@db:5432/m")
    monkeypatch.setenv("POSTGRES_PASSWORD", "pw-s3cr3t")
    assert main(["config", "--json"]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t" not in out
    values = json.loads(out.strip().splitlines()[-1])
    assert values["alert_webhook_url"] == "https://hooks.example.com/***"
    assert values["monitoring_db_url"].startswith("postgresql+psycopg://churnops:***@db")


def test_config_masks_passwords_in_url_queries(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "MONITORING_DB_URL", "postgresql+psycopg://churnops@db:5432/m?password=q5ecret&sslmode=x"
    )
    monkeypatch.setenv("OPTUNA_STORAGE_URL", "postgresql://db/optuna?sslpassword=q5ecret")
    monkeypatch.setenv("REDIS_URL", "redis://default:q5ecret@redis:6379/0")
    assert main(["config", "--json"]) == 0
    out = capsys.readouterr().out
    assert "q5ecret" not in out
    values = json.loads(out.strip().splitlines()[-1])
    assert (
        "password=***" in values["monitoring_db_url"] and "sslmode=x" in values["monitoring_db_url"]
    )


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert main(["demo", "--home", str(precious)]) == 2
    assert "refusing to wipe" in capsys.readouterr().err
    assert (precious / "thesis.tex").exists()
