"""The platform over time: the SQL behind the Grafana dashboards' Postgres panels, and plots of it.

Each query here is the `rawSql` of one panel in `docker/grafana/dashboards/` (a test checks they
are the same text and runs every panel's SQL on the real schema), so the monitoring report's
"over time" page shows what the dashboards show, and shows it where there is no Grafana.
Queries are plain SQL (no Grafana macros) over `monitoring.*`; each returns a `time` column
first, then numeric series, and optionally a `metric` column naming the line (Grafana's rule).
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from html import escape

import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trend:
    title: str
    sql: str
    ylabel: str


TRENDS: dict[str, Trend] = {
    "max_psi": Trend(
        "Max PSI per batch of new data",
        "SELECT q.created_at AS time, q.max_psi AS max_psi FROM monitoring.quality_runs q "
        "WHERE q.kind = 'new_data' AND q.max_psi IS NOT NULL ORDER BY q.created_at",
        "PSI",
    ),
    "feature_psi": Trend(
        "PSI per feature over time",
        "SELECT q.created_at AS time, f.feature AS metric, f.psi AS psi FROM "
        "monitoring.feature_psi f JOIN monitoring.quality_runs q ON q.run_id = f.run_id "
        "WHERE q.kind = 'new_data' ORDER BY q.created_at, f.feature",
        "PSI",
    ),
    "realized_performance": Trend(
        "Realized performance per model version (labelled outcomes)",
        "SELECT p.computed_at AS time, 'v' || p.model_version AS metric, p.pr_auc AS pr_auc "
        "FROM monitoring.performance_metrics p WHERE p.pr_auc IS NOT NULL "
        "ORDER BY p.computed_at",
        "PR-AUC",
    ),
    "promotions": Trend(
        "Promotion decisions (challenger PR-AUC on the holdout)",
        "SELECT m.decided_at AS time, m.decision AS metric, m.challenger_pr_auc AS pr_auc "
        "FROM monitoring.model_promotions m ORDER BY m.decided_at",
        "PR-AUC",
    ),
    "batch_scores": Trend(
        "Mean churn probability and high-risk share per scored batch",
        "SELECT s.created_at AS time, s.score_mean AS score_mean, "
        "s.high_risk_share AS high_risk_share FROM monitoring.scoring_runs s "
        "ORDER BY s.created_at",
        "share",
    ),
    "rows_scored": Trend(
        "Rows scored per batch",
        "SELECT s.created_at AS time, s.rows AS rows_scored FROM monitoring.scoring_runs s "
        "ORDER BY s.created_at",
        "rows",
    ),
    "segment_positive_rate": Trend(
        "Churn rate per segment over time",
        "SELECT sm.computed_at AS time, sm.segment_column || '=' || sm.segment_value AS metric,"
        " sm.positive_rate AS positive_rate FROM monitoring.segment_metrics sm "
        "WHERE sm.positive_rate IS NOT NULL ORDER BY sm.computed_at",
        "churn rate",
    ),
    "quality_verdicts": Trend(
        "Files checked: rows accepted and rejected",
        "SELECT q.created_at AS time, q.status AS metric, q.rows AS rows FROM "
        "monitoring.quality_runs q WHERE q.rows IS NOT NULL ORDER BY q.created_at",
        "rows",
    ),
}


def query(engine: Engine, sql: str) -> pd.DataFrame:
    """A trend's rows (on SQLite the tables have no schema prefix)."""
    if engine.dialect.name == "sqlite":
        sql = sql.replace("monitoring.", "")
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(text(sql)).mappings().all())
    if not frame.empty:
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="mixed")
    return frame


def _png(frame: pd.DataFrame, trend: Trend, limit: int = 12) -> str:
    figure = Figure(figsize=(7.5, 3.0))
    axes = figure.subplots()
    values = [c for c in frame.columns if c not in ("time", "metric")]
    if "metric" in frame:
        top = frame["metric"].value_counts().index[:limit]  # the busiest lines only
        for name, part in frame[frame["metric"].isin(top)].groupby("metric"):
            axes.plot(part["time"], part[values[0]], marker=".", label=str(name))
    else:
        for column in values:
            axes.plot(frame["time"], frame[column], marker=".", label=column)
    axes.set_ylabel(trend.ylabel)
    axes.legend(fontsize=6, loc="best")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def render_trends(engine: Engine) -> str:
    """`trends.html`: one plot per trend that has data, from the dashboards' own queries."""
    sections = []
    for name, trend in TRENDS.items():
        try:
            frame = query(engine, trend.sql)
        except Exception as exc:  # a missing table on an old schema: skip that plot only
            log.warning("trend %s not plotted: %s", name, exc)
            continue
        if frame.empty:
            sections.append(f"<h2>{escape(trend.title)}</h2><p>No data yet.</p>")
            continue
        png = _png(frame, trend)
        sections.append(
            f'<h2>{escape(trend.title)}</h2><img alt="{escape(name)}" '
            f'src="data:image/png;base64,{png}">'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>ChurnOps over time</title><style>body{font-family:sans-serif;max-width:60em;"
        "margin:2em auto}img{max-width:100%}</style></head><body><h1>The platform over time</h1>"
        "<p>The same queries as the Grafana dashboards' Postgres panels.</p>"
        + "".join(sections)
        + "</body></html>\n"
    )
