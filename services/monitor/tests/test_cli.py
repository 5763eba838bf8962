"""`churnops monitor` and `churnops status` through the real CLI entry (embedded mode)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from churnops_common.cli import main
from churnops_common.db.tables import model_promotions, retention_campaigns
from churnops_common.embedded import EmbeddedPlatform


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


def test_status_and_monitor_on_an_empty_platform(capsys: pytest.CaptureFixture[str]) -> None:
    code, status = _json(capsys, ["status", "--json"])
    assert code == 0
    assert status["scoring_runs"] == [] and status["alerts"] == []
    assert status["champion"]["mlflow"]["reachable"] is False
    code, report = _json(capsys, ["monitor", "--json"])
    assert code == 0
    assert (report["status"], report["reason"]) == ("skipped", "no predictions yet")


def test_bad_since_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", "--since", "last tuesday"]) == 2
    assert "--since must be a date" in capsys.readouterr().err
    assert main(["monitor", "--since", "2999-01-01"]) == 2
    assert "in the future" in capsys.readouterr().err


def test_status_and_monitor_after_scoring(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    platform = make_platform()  # the same CHURNOPS_HOME the CLI reads
    now = datetime.now(UTC)
    scored_batch(
        platform, tmp_path, name="batch-s", rows=300, seed=6, created_at=now - timedelta(days=10)
    )
    with platform.runtime.engine.begin() as conn:
        conn.execute(
            model_promotions.insert().values(
                model_name="churn-model",
                challenger_version="1",
                challenger_pr_auc=0.6,
                decision="promoted",
                reason="first model",
                correlation_id="c",
                decided_at=now,
            )
        )
        conn.execute(
            retention_campaigns.insert().values(
                scoring_run_id="run-s",
                model_name="churn-model",
                model_version="1",
                rows=300,
                contacted=40,
                expected_cost=120.0,
                expected_retained=900.0,
                expected_profit=780.0,
                created_at=now,
            )
        )
    code, status = _json(capsys, ["status", "--json"])
    assert code == 0
    assert [r["input_key"] for r in status["scoring_runs"]] == ["new_data/batch-s.csv"]
    assert status["champion"]["promotions"][0]["challenger_version"] == "1"
    [campaign] = status["retention_campaigns"]
    assert (campaign["contacted"], campaign["expected_profit"]) == (40, 780.0)
    assert status["realized_profit"] == []

    # The default window (7 days) misses the batch; --since reaches it.
    code, report = _json(capsys, ["monitor", "--json"])
    assert report["reason"].startswith("no batches scored since")
    since = (now - timedelta(days=11)).date().isoformat()
    code, report = _json(capsys, ["monitor", "--since", since, "--json"])
    assert code == 0
    assert report["status"] == "done"
    assert report["current_rows"] == 300
    assert report["window_start"].startswith(since)
