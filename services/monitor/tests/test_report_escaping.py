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
