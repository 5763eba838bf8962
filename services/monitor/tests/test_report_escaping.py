"""User text in a drift report (categories, column names) cannot run as script in the page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnops_monitor.evidently_reports import data_drift_report

PAYLOAD = "</script><script>alert(1)</script>"


def test_a_script_payload_never_appears_raw_in_the_drift_report(tmp_path: Path) -> None:
    reference = pd.DataFrame(
        {"plan": ["basic", "pro", PAYLOAD] * 40, PAYLOAD: ["a", "b"] * 60, "age": range(120)}
    )
    current = pd.DataFrame(
        {"plan": [PAYLOAD, PAYLOAD, "pro"] * 40, PAYLOAD: ["b", "b"] * 60, "age": range(120)}
    )

    built = data_drift_report(reference, current, set(), tmp_path, threshold=0.2)

    assert built is not None
    pages = list(tmp_path.rglob("*.html"))
    assert pages == [built.html]
    html = built.html.read_text(encoding="utf-8")
    assert "alert(1)" in html  # the value is in the report, shown...
    assert PAYLOAD not in html and "</script><script>" not in html  # ...but never as markup
    assert any("plan" in key for key in built.metrics)


def test_the_monitoring_index_shows_hostile_names_as_text() -> None:
    from datetime import UTC, datetime

    from churnops_common.drift import DriftVerdict
    from churnops_monitor.batches import BatchReview
    from churnops_monitor.monitoring import MonitoringResult
    from churnops_monitor.report_index import render_index

    now = datetime.now(UTC)
    batch = BatchReview(
        name=f"{PAYLOAD}.csv",
        uri=f"s3://landing/new_data/{PAYLOAD}.csv",
        scored_at=now,
        rows=10,
        model_version="1",
        status="accepted",
        verdict=DriftVerdict({PAYLOAD: 0.5, "age": 0.01}, 0.2),
        quality_report=f"s3://reports/quality/x/q-1/report.html?{PAYLOAD}",
        actions=["retrain requested", f"retrain skipped: {PAYLOAD}"],
    )
    result = MonitoringResult(
        report_id="r" * 20, status="done", window_start=now, window_end=now, scoring_runs=1
    )
    html = render_index(result, ["data_drift.html"], [batch], lambda uri: uri, 0.2)
    assert "alert(1)" in html  # shown...
    assert PAYLOAD not in html and "<script>" not in html  # ...never as markup
    assert "drift in 1 of 2 features: retrain requested; retrain skipped:" in html
