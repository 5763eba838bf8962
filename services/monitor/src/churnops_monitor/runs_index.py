"""`monitoring/index.html` in the reports bucket: every monitoring report, newest first.

Rewritten after each report (built or skipped) from `monitoring.monitoring_reports`, so it is
the way in: one line per report with its window, its verdict in words and a link to it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from sqlalchemy import select

from churnops_common.db.tables import monitoring_reports
from churnops_common.runtime import Runtime

INDEX_KEY = "monitoring/index.html"
LISTED = 200  # newest reports listed


def _verdict(row: Any) -> str:
    if row.status != "done":
        return f"skipped: {row.reason or 'no reason recorded'}"
    metrics = row.metrics if isinstance(row.metrics, dict) else {}
    checked = int(metrics.get("batches.checked", 0))
    drifted = int(metrics.get("batches.drifted", 0))
    if not checked:
        return f"{row.scoring_runs} batch(es), none with a drift check"
    return (
        f"drift in {drifted} of {checked} batch(es)"
        if drifted
        else f"no drift in {checked} batch(es)"
    )


def _href(row: Any, bucket: str) -> str | None:
    prefix = f"s3://{bucket}/monitoring/"
    for uri in row.report_uris or []:
        if isinstance(uri, str) and uri.startswith(prefix) and uri.endswith("/index.html"):
            return uri.removeprefix(prefix)
    return None


def render_runs_index(rows: list[Any], bucket: str) -> str:
    lines = []
    for row in rows:
        href = _href(row, bucket)
        when = f"{row.window_start:%Y-%m-%d %H:%M} to {row.window_end:%Y-%m-%d %H:%M}"
        name = f'<a href="{escape(href)}">{escape(when)}</a>' if href else escape(when)
        drift = isinstance(row.metrics, dict) and row.metrics.get("batches.drifted", 0) > 0
        lines.append(
            f"<tr><td>{name}</td><td{' class=drift' if drift else ''}>"
            f"{escape(_verdict(row))}</td><td>{row.current_rows}</td></tr>"
        )
    body = "".join(lines) or '<tr><td colspan="3">No monitoring report yet.</td></tr>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>ChurnOps monitoring reports</title><style>body{font-family:system-ui,sans-serif;"
        "max-width:60em;margin:2em auto}td,th{padding:.25em .8em;border-bottom:1px solid #ddd;"
        "text-align:left}.drift{color:#b00020;font-weight:600}</style></head><body>"
        "<h1>Monitoring reports</h1><table><tr><th>window</th><th>verdict</th><th>rows</th></tr>"
        f"{body}</table></body></html>\n"
    )


def publish_runs_index(runtime: Runtime) -> str:
    """Rewrite the index of all reports; returns its URI."""
    table = monitoring_reports
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.created_at.desc()).limit(LISTED)).all()
    bucket = runtime.settings.minio_reports_bucket
    html = render_runs_index(list(rows), bucket)
    info = runtime.store.put_bytes(bucket, INDEX_KEY, html.encode(), "text/html; charset=utf-8")
    return str(info.uri)
