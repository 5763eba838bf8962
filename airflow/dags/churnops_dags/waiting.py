"""The wait every ChurnOps DAG ends with: poll the ledger until its kickoff event is handled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import PokeReturnValue, task

from churnops_dags.defaults import POKE_INTERVAL_S, POKE_MAX_WAIT_S


def wait_for_outcome(timeout: timedelta) -> Any:
    """A sensor task `wait_for_outcome` that succeeds when the handler is done, fails when the
    event was dead-lettered, and holds no worker slot between polls (reschedule mode)."""

    @task.sensor(
        task_id="wait_for_outcome",
        mode="reschedule",
        poke_interval=POKE_INTERVAL_S,
        exponential_backoff=True,
        max_wait=POKE_MAX_WAIT_S,
        timeout=timeout.total_seconds(),
    )
    def wait(publication: dict[str, Any]) -> PokeReturnValue:
        from churnops_dags.tasks import poke_outcome

        return poke_outcome(publication)

    return wait
