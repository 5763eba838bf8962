"""What each command prints, run as a user runs it (the installed `churnops`, one process per
command) on the demo's state: no library warning reaches the terminal (they stay in `-v` logs),
and `--json` keeps its shape for the machines that read it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]

CHURNOPS = Path(sys.executable).with_name("churnops")
# Python warnings by class name (SyntaxWarning from Evidently, RuntimeWarning from scipy, ...),
# MLflow's notes on pickled and registered models, and a traceback of any kind.
LIBRARY_NOISE = re.compile(
    r"[A-Z][A-Za-z]*Warning\b|warnings\.warn|pickle|Registered model|Created version"
    r"|Traceback \(most recent call last\)",
    re.IGNORECASE,
)
# The top-level keys each command's `--json` line has carried (and must keep).
JSON_KEYS: dict[str, set[str]] = {
    "demo": {
        "stages",
        "batches_scored",
        "rejected",
        "rejections",
        "psi_breaches",
        "estimated_degradations",
        "drifted_pr_auc_estimated",
        "drifted_pr_auc_realized",
        "retrains",
        "promotions",
        "champion_version",
        "events_handled",
        "dead_letters",
        "seconds",
        "home",
    },
    "status": {
        "mode",
        "champion",
        "live_performance",
        "estimated_performance",
        "scoring_runs",
        "rejected_files",
        "alerts",
        "monitoring_reports",
    },
    "monitor": {
        "report_id",
        "status",
        "reason",
        "window_start",
        "window_end",
        "scoring_runs",
        "current_rows",
        "labelled_rows",
        "reference_source",
        "reference_uri",
        "report_uris",
        "metrics",
        "mlflow_run_id",
    },
    "drop": {"object", "etag", "events", "handled"},
    "score": {
        "status",
        "rows",
        "model_name",
        "model_version",
        "contract",
        "id_column",
        "warnings",
        "predictions_object",
        "scoring_run_id",
        "out",
        "retention",
        "campaign",
        "seconds",
    },
    "validate": {
        "baseline_version",
        "contract",
        "file",
        "has_target",
        "issues",
        "max_psi",
        "model_name",
        "psi",
        "reason",
        "rows",
        "status",
        "warnings",
    },
    "psi": {"breached", "contract", "features", "max_psi", "reference", "threshold"},
    "estimate": {
        "roc_auc",
        "pr_auc",
        "precision",
        "recall",
        "precision_at_k",
        "expected_churners",
        "bands",
        "rows",
        "threshold",
        "top_k",
        "reference",
        "reference_roc_auc",
        "reference_pr_auc",
    },
    "train": {
        "holdout",
        "calibration",
        "model_name",
        "model_version",
        "promoted",
        "best_family",
        "contract",
        "baseline_version",
        "quality_run_id",
        "warnings",
        "event",
        "workers_notified",
        "notice",
    },
    "generate": {"out", "rows", "seed", "drift", "loyalty", "levels", "churn_rate"},
    "evaluate": {"rows", "churners", "roc_auc", "pr_auc", "empc", "mp", "profit", "contacted"},
    "config": {"churnops_mode", "churnops_home", "scorer_reason_floor", "retention_value_column"},
    "db": {"applied", "database", "grafana_login"},
    "dead-letters": {"dead_letters"},
    "request": {"published", "event_id", "correlation_id", "handled", "events"},
}


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_"))}
    env |= {"CHURNOPS_HOME": str(home), "COLUMNS": "100", "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [str(CHURNOPS), *args],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _quiet(result: subprocess.CompletedProcess[str], what: str) -> None:
    terminal = result.stdout + result.stderr
    assert result.returncode == 0, f"{what}: exit {result.returncode}\n{terminal}"
    noise = LIBRARY_NOISE.search(terminal)
    assert noise is None, f"{what} printed library noise {noise.group(0)!r}:\n{terminal}"


def _json(result: subprocess.CompletedProcess[str], command: str) -> dict[str, object]:
    _quiet(result, f"{command} --json")
    line = result.stdout.strip().splitlines()[-1]
    value = json.loads(line)
    assert isinstance(value, dict)
    missing = JSON_KEYS[command] - set(value)
    assert not missing, f"{command} --json lost {sorted(missing)}"
    return value


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's state, made by `churnops demo` itself (a short search), checked on the way."""
    home = tmp_path_factory.mktemp("cli") / "demo"
    summary = _json(_run(home, "demo", "--home", str(home), "--trials", "2", "--json"), "demo")
    assert summary["batches_scored"] and summary["promotions"]
    return home


def test_each_command_speaks_to_people_and_keeps_its_json(demo_home: Path) -> None:
    work = demo_home.parent
    batch, train = work / "batch.csv", work / "train.csv"
    _quiet(_run(demo_home, "generate", "--rows", "400", "--seed", "9", "--out", str(train)), "gen")
    _json(
        _run(
            demo_home,
            "generate",
            "--rows",
            "300",
            "--seed",
            "7",
            "--no-target",
            "--out",
            str(batch),
            "--json",
        ),
        "generate",
    )
    out = work / "scored" / "predictions.csv"
    outcomes = work / "scored" / "labelled.csv"
    commands: list[tuple[str, list[str]]] = [
        ("status", ["status"]),
        ("config", ["config"]),
        ("db", ["db", "upgrade"]),
        ("dead-letters", ["dead-letters"]),
        ("validate", ["validate", str(batch)]),
        ("psi", ["psi", str(batch)]),
        ("score", ["score", str(batch), "--out", str(out)]),
        ("estimate", ["estimate", str(out)]),
        ("score", ["score", str(train), "--out", str(outcomes)]),
        ("evaluate", ["evaluate", str(outcomes), "--labels", str(train)]),
        ("drop", ["drop", str(batch), "--kind", "new_data", "--name", "again.csv"]),
        ("request", ["request", "sweep"]),
        ("monitor", ["monitor"]),
    ]
    for command, args in commands:
        human = _run(demo_home, *args)
        _quiet(human, command)
        assert not human.stdout.lstrip().startswith("{"), f"{command}: a dict, not sentences"
        _json(_run(demo_home, *args, "--json"), command)
    # Training registers a model (MLflow prints about it and about pickles): one run, as JSON.
    trained = _json(
        _run(demo_home, "train", "--data", str(train), "--trials", "2", "--json"), "train"
    )
    assert trained["model_version"]


def test_status_and_monitor_read_as_sentences_and_short_tables(demo_home: Path) -> None:
    status = _run(demo_home, "status")
    _quiet(status, "status")
    text = status.stderr + status.stdout
    assert "Champion: churn-model version" in text
    assert "Retention campaigns" in text  # the profit cut's totals per scored batch
    assert "s3://" not in text  # embedded mode: paths that exist here
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d{6}", text)  # no microsecond timestamps
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-", text)  # no UUIDs
    assert str(demo_home / "objects" / "predictions") in text
    monitor = _run(demo_home, "monitor")
    _quiet(monitor, "monitor")
    said = monitor.stderr + monitor.stdout
    assert said.startswith(("Monitoring report over", "No monitoring report"))
    assert "s3://" not in said


def test_verbose_keeps_library_warnings_in_the_log(demo_home: Path) -> None:
    env_check = _run(demo_home, "-v", "monitor")
    assert env_check.returncode == 0
    # Timestamped log lines from the platform's own loggers reach the terminal under -v, and
    # the libraries' warnings with them (Evidently's, at least, on the locked versions).
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} INFO ", env_check.stderr)
    assert re.search(r"WARNING py\.warnings: .*Warning", env_check.stderr)
