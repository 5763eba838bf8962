"""`profit.html` of the monitoring report: realized profit per labelled batch, the profit cut
against the two plain policies (top 10% by probability, probability >= 0.5), over time."""

from __future__ import annotations

import base64
import io
from html import escape

import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import Engine, select

from churnops_common.db.tables import realized_profits

POLICIES = {
    "profit": "profit cut (expected profit > 0, within capacity/budget)",
    "profit_top10": "top 10% by probability",
    "profit_p50": "probability >= 0.5",
}


def realized_frame(engine: Engine) -> pd.DataFrame:
    table = realized_profits
    query = select(table).order_by(table.c.computed_at)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).mappings().all())
    if not frame.empty:
        frame["computed_at"] = pd.to_datetime(frame["computed_at"], utc=True, format="mixed")
    return frame


def _png(frame: pd.DataFrame) -> str:
    figure = Figure(figsize=(7.5, 3.2))
    axes = figure.subplots()
    for column, label in POLICIES.items():
        axes.plot(frame["computed_at"], frame[column], marker="o", label=label)
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set_ylabel("realized profit per batch")
    axes.legend(fontsize=7, loc="best")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _table(frame: pd.DataFrame) -> str:
    rows = "".join(
        f"<tr><td>{escape(str(r.computed_at))}</td><td>v{escape(str(r.model_version))}</td>"
        f"<td>{r.rows}</td><td>{r.contacted}</td><td>{r.profit:,.2f}</td>"
        f"<td>{r.profit_top10:,.2f}</td><td>{r.profit_p50:,.2f}</td></tr>"
        for r in frame.itertuples()
    )
    return (
        "<table><tr><th>labelled at</th><th>model</th><th>rows</th><th>contacted</th>"
        "<th>profit cut</th><th>top 10%</th><th>p &ge; 0.5</th></tr>" + rows + "</table>"
    )


def render_profit(engine: Engine) -> str:
    """The page: a plot and the figures, or a line saying no labelled batch has landed yet."""
    frame = realized_frame(engine)
    if frame.empty:
        body = "<p>No labelled batch yet: realized profit needs outcomes.</p>"
    else:
        body = f'<img alt="realized profit" src="data:image/png;base64,{_png(frame)}">' + _table(
            frame
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Realized profit</title><style>body{font-family:sans-serif;max-width:60em;"
        "margin:2em auto}img{max-width:100%}td,th{padding:0 .6em;text-align:right}</style>"
        "</head><body><h1>Realized profit per labelled batch</h1><p>What contacting the"
        " customers each policy picks earned once outcomes were known (RETENTION_* economics,"
        " acceptance at its mean rate).</p>" + body + "</body></html>\n"
    )
