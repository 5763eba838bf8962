"""`index.html` of a monitoring report: what was compared with what, why, and the key figures.

Evidently's pages cannot say which reference was used or why; this page does, and links them.
"""

from __future__ import annotations

from html import escape

from churnops_monitor.records import MonitoringResult

KEY_METRICS = (
    ("data_drift.DriftedColumnsCount.count", "drifted columns"),
    ("data_drift.DriftedColumnsCount.share", "share of columns drifted"),
    ("prediction_drift.ValueDrift.churn_probability", "prediction drift (test statistic)"),
    ("current.mean_score", "mean churn probability"),
    ("performance.roc_auc", "ROC-AUC (labelled rows)"),
    ("performance.pr_auc", "PR-AUC (labelled rows)"),
    ("performance.precision_at_k", "precision at top K"),
    ("performance.brier", "Brier score"),
)


def render_index(
    result: MonitoringResult, pages: list[str], quality: list[tuple[str, str]] | None = None
) -> str:
    """The index; `quality` lists (input, quality report) of the window's batches."""
    rows = "".join(
        f"<tr><td>{escape(label)}</td><td>{result.metrics[key]:.4f}</td></tr>"
        for key, label in KEY_METRICS
        if key in result.metrics
    )
    links = "".join(f'<li><a href="{escape(p)}">{escape(p)}</a></li>' for p in pages)
    checked = "".join(
        f"<li><code>{escape(source)}</code>: <code>{escape(report)}</code></li>"
        for source, report in quality or []
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ChurnOps monitoring report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td{{padding:.2em 1em;border-bottom:1px solid #ddd}}</style></head><body>
<h1>Monitoring report {escape(result.report_id[:12])}</h1>
<p>Batches scored from {escape(result.window_start.isoformat())} to
{escape(result.window_end.isoformat())}: {result.scoring_runs} batch(es),
{result.current_rows} rows, {result.labelled_rows} with a known outcome.</p>
<p><b>Reference:</b> {escape(str(result.reference_source))}
(<code>{escape(str(result.reference_uri))}</code>): {escape(str(result.reference_note))}.</p>
<table>{rows}</table>
<h2>Reports</h2><ul>{links}</ul>
<h2>Quality reports of these batches</h2><ul>{checked or "<li>none rendered yet</li>"}</ul>
</body></html>
"""
