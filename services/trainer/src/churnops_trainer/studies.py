"""Old Optuna studies leave the study storage after RETENTION_STUDIES_DAYS (0: never).

Run after each training, best effort: a prune that fails is logged and tried next time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import optuna

from churnops_common.settings import Settings
from churnops_trainer.train_model import optuna_storage

log = logging.getLogger(__name__)


def prune_studies(settings: Settings, now: datetime | None = None) -> int:
    """Delete the studies started before the retention window; returns how many."""
    storage = optuna_storage(settings)
    if storage is None or settings.retention_studies_days <= 0:
        return 0  # embedded mode keeps studies in memory
    cut = (now or datetime.now(UTC)) - timedelta(days=settings.retention_studies_days)
    removed = 0
    try:
        for study in optuna.get_all_study_summaries(storage, include_best_trial=False):
            started = study.datetime_start
            if started is not None and started.replace(tzinfo=started.tzinfo or UTC) < cut:
                optuna.delete_study(study_name=study.study_name, storage=storage)
                removed += 1
    except Exception as exc:  # housekeeping must never fail a training
        log.warning("old Optuna studies not pruned (tried again after the next training): %s", exc)
    if removed:
        log.info("pruned %d Optuna stud(ies) started before %s", removed, cut.isoformat())
    return removed
