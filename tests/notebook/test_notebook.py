"""The EDA and explainability notebook: paired, output-free, and executable on the demo's state.

CI runs it headless (nbclient) on a short demo and fails on any cell error; the HTML it puts in
the reports bucket carries the plots.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from churnops_common.settings import Settings

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "churn_risk_eda_explainability.ipynb"
PAIRED = NOTEBOOK.with_suffix(".py")
DEMO_TRIALS = 2


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "notebook_render", REPO / "notebooks" / "render.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_notebook_is_paired_with_its_text_version_and_has_no_outputs() -> None:
    import jupytext
    import nbformat

    committed = nbformat.read(NOTEBOOK, as_version=4)
    text = jupytext.read(PAIRED)
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in text.cells
    ], "run: jupytext --sync notebooks/churn_risk_eda_explainability.py"
    for cell in committed.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "outputs are not committed"
    assert "py:percent" in committed.metadata["jupytext"]["formats"]


@pytest.mark.slow
def test_the_notebook_runs_headless_on_the_demo_state_and_its_html_has_the_plots(
    tmp_path: Path,
) -> None:
    from churnops_common.demo import run_demo
    from churnops_common.storage import object_store_from_settings, parse_uri

    home = tmp_path / "demo"
    settings = Settings(
        churnops_mode="embedded", churnops_home=home, optuna_n_trials=DEMO_TRIALS, _env_file=None
    )
    summary = run_demo(settings, progress=lambda _: None)
    assert summary.batches_scored > 0 and summary.psi_breaches > 0
    # The shifted batch is estimated degraded before its labels; they land at the end, and the
    # realized PR-AUC is stored beside the estimate (it is a covariate shift: close to it).
    assert summary.estimated_degradations == 1
    assert summary.drifted_pr_auc_estimated is not None
    assert summary.drifted_pr_auc_realized is not None
    assert abs(summary.drifted_pr_auc_estimated - summary.drifted_pr_auc_realized) < 0.1
    assert summary.promotions == 2  # the drifted labelled batch's retrain still promotes
    _assert_the_demo_decides_by_profit(settings, summary)
    # The demo ends with a monitoring report, a file to open, listed in the index of reports.
    assert summary.monitoring_report and summary.monitoring_reports
    report = Path(summary.monitoring_report)
    assert report.is_file() and report.is_relative_to(home.resolve())
    assert "batch-0006-drifted.csv" in report.read_text(encoding="utf-8")
    assert report.parent.name in Path(summary.monitoring_reports).read_text(encoding="utf-8")

    render = _render_module()
    out = tmp_path / "notebook.html"
    result = render.render({"CHURNOPS_MODE": "embedded", "CHURNOPS_HOME": str(home)}, out)

    html = out.read_text(encoding="utf-8")
    assert result["plots"] >= 10
    assert html.count('src="data:image/png;base64,') == result["plots"]
    for heading in (
        "Class balance",
        "Mean |SHAP|",
        "dependence: ",
        "Local explanations",
        "Calibration, Brier",
        "PSI per feature",
    ):
        assert heading in html or heading.replace("|", "&#124;") in html, heading
    assert "leading reason agrees" in html
    assert "Traceback" not in html and "Error" not in html.split("</style>")[-1]
    bucket, key = parse_uri(result["report"])
    assert bucket == settings.minio_reports_bucket
    assert key.startswith("notebooks/churn_risk_eda_explainability/") and key.endswith(".html")
    assert object_store_from_settings(settings).get_bytes(bucket, key).decode() == html


def _assert_the_demo_decides_by_profit(settings: Settings, summary: Any) -> None:
    """The demo's retention lists carry expected profit and the cut; its summary prints the
    campaign's expected profit."""
    import io

    import pandas as pd

    from churnops_common.cli import _print_summary, console
    from churnops_common.storage import object_store_from_settings

    assert summary.customers_to_contact > 0 and summary.campaign_expected_profit > 0
    store = object_store_from_settings(settings)
    bucket = settings.minio_predictions_bucket
    lists = [o.key for o in store.list_objects(bucket) if o.key.endswith("/retention.csv")]
    assert lists
    for key in lists:
        retention = pd.read_csv(io.BytesIO(store.get_bytes(bucket, key)))
        assert {"expected_profit", "contact"} <= set(retention.columns)
        assert retention["expected_profit"].is_monotonic_decreasing
    with console.capture() as captured:
        _print_summary(summary.to_dict())
    assert f"campaign_expected_profit: {summary.campaign_expected_profit}" in captured.get()
