"""The daily prune, run by the sweep: what grows with every message is kept for a while only.

Finished ledger rows, dead letters, the bridge's parked notifications and the quality MLflow
runs, each by its own retention setting (0 keeps it forever). Optuna studies are the trainer's
(it alone has Optuna): it prunes them after each training (churnops_trainer.studies).
The sweep does not depend on the pruned ledger rows: a landed object with a quality run on
record is never announced again (see sweep.py).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from churnops_common.db.tables import dead_letters, processed_events
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Pruned:
    ledger_rows: int = 0
    dead_letters: int = 0
    parked: int = 0
    quality_mlflow_runs: int = 0


def _before(now: datetime, days: int) -> datetime | None:
    return None if days <= 0 else now - timedelta(days=days)


def prune(runtime: Runtime, now: datetime | None = None) -> Pruned:
    settings, now = runtime.settings, now or datetime.now(UTC)
    pruned = Pruned()
    ledger_cut = _before(now, settings.retention_ledger_days)
    letters_cut = _before(now, settings.retention_dead_letters_days)
    with runtime.engine.begin() as conn:
        if ledger_cut is not None:
            pruned.ledger_rows = conn.execute(
                delete(processed_events).where(
                    processed_events.c.status == "done",
                    processed_events.c.finished_at < ledger_cut,
                )
            ).rowcount
        if letters_cut is not None:
            pruned.dead_letters = conn.execute(
                delete(dead_letters).where(dead_letters.c.created_at < letters_cut)
            ).rowcount
    if settings.is_stack and settings.retention_parked_max > 0:
        pruned.parked = _trim_parked(settings)
    runs_cut = _before(now, settings.retention_quality_runs_days)
    if runs_cut is not None and settings.quality_mlflow_enabled:
        pruned.quality_mlflow_runs = _prune_quality_runs(settings, runs_cut)
    log.info("pruned %s", asdict(pruned))
    return pruned


def _trim_parked(settings: Settings) -> int:
    from redis import Redis

    key = f"{settings.minio_notify_redis_key}:parked"
    with Redis.from_url(settings.redis_url) as redis:
        before = int(redis.llen(key))
        redis.ltrim(key, -settings.retention_parked_max, -1)  # the newest stay
        return max(before - settings.retention_parked_max, 0)


def _prune_quality_runs(settings: Settings, cut: datetime) -> int:
    from mlflow import MlflowClient

    from churnops_common.mlflow_setup import configure_mlflow
    from churnops_quality.tracking import EXPERIMENT

    client = MlflowClient(tracking_uri=configure_mlflow(settings))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return 0
    removed = 0
    query = f"attributes.start_time < {int(cut.timestamp() * 1000)}"
    token: str | None = None
    while True:  # page through: the old runs of years of files need not fit in memory
        page = client.search_runs(
            [experiment.experiment_id], query, max_results=1000, page_token=token
        )
        for run in page:
            client.delete_run(run.info.run_id)
            removed += 1
        token = page.token
        if not token:
            return removed
