"""The retention campaign of a scored batch on record: the profit cut's totals, one row per run."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from churnops_common.db.inserts import insert_for
from churnops_common.db.tables import retention_campaigns
from churnops_scorer.models import LoadedModel
from churnops_scorer.retention import RetentionList


def record(
    engine: Engine, run_id: str, model: LoadedModel, rows: int, retention: RetentionList
) -> None:
    """Idempotent: a second delivery of the same run leaves the first row."""
    totals, economics = retention.totals(), retention.economics
    statement = insert_for(engine, retention_campaigns).values(
        scoring_run_id=run_id,
        model_name=model.name,
        model_version=model.version,
        rows=rows,
        contacted=totals.contacted,
        expected_cost=totals.expected_cost,
        expected_retained=totals.expected_retained,
        expected_profit=totals.expected_profit,
        capacity=economics.capacity,
        budget=economics.budget,
        created_at=datetime.now(UTC),
    )
    with engine.begin() as conn:
        conn.execute(statement.on_conflict_do_nothing())


def find(engine: Engine, run_id: str) -> dict[str, float | int | None] | None:
    """A run's campaign totals, as `RetentionList.summary` states them; None before any."""
    from sqlalchemy import select

    table = retention_campaigns
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.scoring_run_id == run_id)).first()
    if row is None:
        return None
    return {
        "contacted": int(row.contacted),
        "expected_cost": round(float(row.expected_cost), 2),
        "expected_retained_value": round(float(row.expected_retained), 2),
        "expected_profit": round(float(row.expected_profit), 2),
        "capacity": row.capacity,
        "budget": row.budget,
    }
