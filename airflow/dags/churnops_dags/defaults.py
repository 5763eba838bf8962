"""Settings every ChurnOps DAG shares: owner, retries, and how its wait for the outcome polls.

Only the standard library here: the DAG processor imports this module on every parse.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

# Static, in the past: with catchup=False the first run is the latest interval, never a backfill.
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)

TAGS_BASE = ("churnops", "kickoff")

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "churnops",
    # Publishing is idempotent per DAG run, so retrying it is always safe.
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
}


def _seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


# The wait for the outcome runs in reschedule mode: between polls it holds no worker slot.
# The first poll comes soon after publishing (fast handlers finish in seconds); later polls back
# off exponentially up to the cap. Tests shorten both through the environment.
POKE_INTERVAL_S = _seconds_from_env("CHURNOPS_AIRFLOW_POKE_INTERVAL_S", 30.0)
POKE_MAX_WAIT_S = _seconds_from_env("CHURNOPS_AIRFLOW_POKE_MAX_WAIT_S", 600.0)
