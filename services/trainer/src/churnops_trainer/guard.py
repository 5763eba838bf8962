"""Retrain guards: a cooldown between automatic retrains and a minimum of new labelled rows.

Drift and performance triggers raise themselves; without the guards a model that keeps drifting
would retrain in a loop. Schedule, manual and new-training-set triggers bypass them. The guards
read the training runs (`records`) and the accepted labelled batches (`quality_runs`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from churnops_common.db.tables import quality_runs
from churnops_common.settings import Settings
from churnops_trainer.data import LABELLED_KINDS
from churnops_trainer.records import last_training_start

# Triggers that drift or live performance raise on their own: they get the loop guards.
AUTOMATIC_TRIGGERS = frozenset({"drift", "performance"})


def labelled_rows_since(engine: Engine, since: datetime | None) -> int:
    """Rows of accepted labelled batches first validated after `since` (all when None).

    Each object (bucket, key, etag) counts once, however often it was checked.
    """
    per_object = (
        select(
            func.max(quality_runs.c.rows).label("rows"),
            func.min(quality_runs.c.created_at).label("first_seen"),
        )
        .where(
            quality_runs.c.status == "accepted",
            quality_runs.c.has_target.is_(True),
            quality_runs.c.kind.in_(LABELLED_KINDS),
        )
        .group_by(quality_runs.c.bucket, quality_runs.c.object_key, quality_runs.c.etag)
        .subquery()
    )
    query = select(func.coalesce(func.sum(per_object.c.rows), 0))
    if since is not None:
        query = query.where(per_object.c.first_seen > since)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def why_not_retrain(
    engine: Engine,
    settings: Settings,
    trigger: str,
    now: datetime | None = None,
    ignore_run: str | None = None,
) -> str | None:
    """None when a retrain may start; otherwise the reason it is skipped."""
    if trigger not in AUTOMATIC_TRIGGERS:
        return None  # schedule, manual and a new training set bypass the loop guards
    now = now or datetime.now(UTC)
    name = settings.mlflow_model_name
    last_auto = last_training_start(engine, name, AUTOMATIC_TRIGGERS, ignore_run)
    cooldown = timedelta(seconds=settings.retrain_cooldown_s)
    if last_auto is not None and now - last_auto < cooldown:
        wait_s = int((last_auto + cooldown - now).total_seconds())
        return (
            f"cooldown: the last {'/'.join(sorted(AUTOMATIC_TRIGGERS))} retrain started"
            f" {last_auto.isoformat()}; next allowed in {wait_s} s"
        )
    new_rows = labelled_rows_since(engine, last_training_start(engine, name, None, ignore_run))
    if new_rows < settings.retrain_min_new_labelled_rows:
        return (
            f"only {new_rows} new labelled row(s) since the last training;"
            f" {settings.retrain_min_new_labelled_rows} needed (RETRAIN_MIN_NEW_LABELLED_ROWS)"
        )
    return None
