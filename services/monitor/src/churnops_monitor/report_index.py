"""`index.html` of a monitoring report: the verdict per batch, what the platform did, the trend.

It opens with one sentence (which batches drifted, by the platform's PSI), then per batch (named
after its file): the verdict in words, the drifted features, the estimated and realized
performance, links to the batch's quality report and its Evidently drift page; then the PSI of
every feature across the window's batches, then the window-wide Evidently pages. Everything
rendered from user data (file and column names) is escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING

from churnops_common.drift import is_drifted
from churnops_monitor.batches import BatchReview, Performance

if TYPE_CHECKING:
    from churnops_monitor.monitoring import MonitoringResult

KEY_METRICS = (
    ("prediction_drift.psi", "prediction drift: PSI of the churn probabilities"),
    ("current.mean_score", "mean churn probability"),
    ("performance.roc_auc", "ROC-AUC (labelled rows)"),
    ("performance.pr_auc", "PR-AUC (labelled rows)"),
    ("performance.precision_at_k", "precision at top K"),
    ("performance.brier", "Brier score"),
)
PAGES = {
    "data_drift.html": "Data drift of the window's batches merged (Evidently's PSI)",
    "prediction_drift.html": "Prediction drift (PSI of the churn probabilities)",
    "classification.html": "Classification quality of the labelled rows",
    "trends.html": "The platform over time (the Grafana panels' queries)",
}
TREND_BATCHES = 12  # newest batches in the PSI-per-feature table
STYLE = """body{font-family:system-ui,sans-serif;max-width:72em;margin:2em auto;color:#222}
td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
table{border-collapse:collapse;margin:1em 0}.verdict{padding:.6em 1em;border-radius:6px;
font-weight:600;font-size:1.1em}.drift{background:#fbe4e4}.stable{background:#e3f5e6}
td.drift{color:#b00020;font-weight:600;background:none}.small{font-size:.85em;color:#555}"""

Link = Callable[[str | None], str | None]


def overall(batches: list[BatchReview]) -> str:
    """The report's headline, from the batches' own verdicts."""
    checked = [b for b in batches if b.verdict is not None]
    drifted = [b for b in checked if b.verdict is not None and b.verdict.has_drift]
    if not checked:
        return f"{len(batches)} batch(es) scored; none has a drift check"
    if not drifted:
        return f"no drift in {len(checked)} checked batch(es)"
    names = ", ".join(b.name for b in drifted)
    return f"drift in {len(drifted)} of {len(checked)} checked batch(es): {names}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _performance(items: list[Performance]) -> str:
    parts = []
    for p in items:
        band = f" [{_fmt(p.lower)}, {_fmt(p.upper)}]" if p.lower is not None else ""
        estimated = f"estimated {_fmt(p.estimated)}{band}" if p.estimated is not None else ""
        realized = (
            f"realized {_fmt(p.realized)}" if p.realized is not None else "realized: no labels yet"
        )
        text = "; ".join(x for x in (estimated, realized) if x)
        parts.append(f"{escape(p.metric.replace('_', '-').upper())}: {escape(text)}")
    return "<br>".join(parts) or "-"


def _anchor(href: str | None, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>' if href else ""


def _batch_rows(batches: list[BatchReview], link: Link) -> str:
    rows = []
    for b in reversed(batches):  # newest first
        drifted = (
            ", ".join(f"{escape(n)} ({v:.2f})" for n, v in b.verdict.drifted.items())
            if b.verdict is not None and b.verdict.has_drift
            else "none"
        )
        links = " · ".join(
            a
            for a in (
                _anchor(link(b.quality_report), "quality report"),
                _anchor(link(b.evidently_report), "Evidently drift"),
            )
            if a
        )
        css = "drift" if b.verdict is not None and b.verdict.has_drift else ""
        rows.append(
            f'<tr data-batch="{escape(b.name)}"><td><b>{escape(b.name)}</b><br>'
            f'<span class="small">{escape(b.scored_at.isoformat(timespec="seconds"))} · '
            f"{b.rows} rows · model v{escape(b.model_version)}</span></td>"
            f'<td class="{css}" data-verdict>{escape(b.headline)}</td>'
            f"<td data-drifted>{drifted}</td><td>{_performance(b.performance)}</td>"
            f"<td>{links or '-'}</td></tr>"
        )
    return (
        "<table><tr><th>batch</th><th>verdict and what the platform did</th>"
        "<th>drifted features (PSI)</th><th>performance</th><th>reports</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _trend_table(batches: list[BatchReview]) -> str:
    """PSI of every feature (rows) across the newest batches (columns, oldest first)."""
    shown = [b for b in batches if b.verdict is not None][-TREND_BATCHES:]
    if not shown:
        return "<p>No batch of this window has a PSI yet.</p>"
    features = sorted({f for b in shown if b.verdict is not None for f in b.verdict.psi})
    head = "".join(f"<th>{escape(b.name)}</th>" for b in shown)
    body = []
    for feature in features:
        cells = []
        for b in shown:
            value = b.verdict.psi.get(feature) if b.verdict is not None else None
            threshold = b.verdict.threshold if b.verdict is not None else 0.0
            css = ' class="drift"' if is_drifted(value, threshold) else ""
            cells.append(f"<td{css}>{_fmt(value)}</td>")
        body.append(f"<tr><td>{escape(feature)}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>feature</th>{head}</tr>{''.join(body)}</table>"


def _window_drift(result: MonitoringResult, threshold: float) -> str:
    """The merged window against today's reference: context for the per-batch verdicts (a
    baseline refreshed after a retrain holds the drifted data, so this may read 'no drift')."""
    drifted = result.metrics.get("data_drift.DriftedColumnsCount.count")
    columns = result.metrics.get("data_drift.columns")
    if drifted is None or not columns:
        return ""
    words = f"drift in {drifted:.0f} of {columns:.0f} features" if drifted else "no drift"
    return (
        f"<p>All {result.scoring_runs} batch(es) merged against this reference (Evidently's PSI,"
        f" bins of both samples, threshold {threshold:g}): {escape(words)}.</p>"
    )


def _omitted(scored: int, reviewed: int) -> str:
    if reviewed >= scored:
        return ""
    return f"<p>The newest {reviewed} of the window's {scored} batches are reviewed here.</p>"


def render_index(
    result: MonitoringResult,
    pages: list[str],
    batches: list[BatchReview],
    link: Link,
    threshold: float,
) -> str:
    """The index; `link` turns a stored report's URI into an href from this page (or None)."""
    headline = overall(batches)
    drifted = any(b.verdict is not None and b.verdict.has_drift for b in batches)
    score_psi = result.metrics.get("prediction_drift.psi")
    prediction = (
        f"<p><b>Prediction drift</b>: PSI of the window's churn probabilities against the"
        f" reference scores {score_psi:.3f}:"
        f" {'drifted' if is_drifted(score_psi, threshold) else 'no drift'}"
        f" (threshold {threshold:g}).</p>"
        if score_psi is not None
        else ""
    )
    rows = "".join(
        f"<tr><td>{escape(label)}</td><td>{result.metrics[key]:.4f}</td></tr>"
        for key, label in KEY_METRICS
        if key in result.metrics
    )
    links = "".join(f'<li><a href="{escape(p)}">{escape(PAGES.get(p, p))}</a></li>' for p in pages)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ChurnOps monitoring report</title>
<style>{STYLE}</style></head><body>
<h1>Monitoring report</h1>
<p class="small">Batches scored from {escape(result.window_start.isoformat(timespec="seconds"))}
to {escape(result.window_end.isoformat(timespec="seconds"))}: {result.scoring_runs} batch(es),
{result.current_rows} rows, {result.labelled_rows} with a known outcome.
<a href="../../index.html">All monitoring reports</a></p>
<p class="verdict {"drift" if drifted else "stable"}" id="headline">{escape(headline)}</p>
<p>A batch has drifted when the PSI of any feature against the baseline reaches
{threshold:g} (PSI_THRESHOLD); the quality check decides it when the batch lands, and every
report says the same.</p>
{prediction}
<h2>Batches</h2>
{_omitted(result.scoring_runs, len(batches))}
{_batch_rows(batches, link)}
<h2>PSI per feature, batch by batch</h2>
{_trend_table(batches)}
<h2>The window as a whole</h2>
<p><b>Reference:</b> {escape(str(result.reference_source))}
(<code>{escape(str(result.reference_uri))}</code>): {escape(str(result.reference_note))}.</p>
{_window_drift(result, threshold)}
<table>{rows}</table>
<ul>{links}</ul>
</body></html>
"""
