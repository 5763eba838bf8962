"""
### dag_predict_new_data (daily)

The daily safety net of batch scoring. Files are normally scored within seconds of landing
(MinIO notification -> quality -> scorer); this DAG asks the **quality** service for a sweep:
every object in the `landing` bucket with no processed record gets its `DataLanded` again, so a
lost notification only delays scoring until the next sweep.

1. `publish_sweep_requested` publishes one `SweepRequested` (task
   `churnops.quality.on_sweep_requested`, queue `quality`). Its id comes from this DAG run, so a
   retry or a cleared re-run of the same run publishes nothing new.
2. `wait_for_outcome` polls `monitoring.processed_events` / `monitoring.dead_letters` until the
   sweep has been handled (success) or dead-lettered (failure). The files it re-emits are scored
   in the same chain (same correlation id): the wait's XCom shows the chain's counts so far.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import PokeReturnValue, dag, task
from churnops_dags.defaults import (
    DEFAULT_ARGS,
    POKE_INTERVAL_S,
    POKE_MAX_WAIT_S,
    START_DATE,
    TAGS_BASE,
)


@dag(
    dag_id="dag_predict_new_data",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS_BASE, "scoring", "sweep"],
    doc_md=__doc__,
)
def dag_predict_new_data() -> None:
    @task
    def publish_sweep_requested() -> dict[str, Any]:
        from churnops_dags.tasks import publish_kickoff

        return publish_kickoff("SweepRequested")

    @task.sensor(
        mode="reschedule",
        poke_interval=POKE_INTERVAL_S,
        exponential_backoff=True,
        max_wait=POKE_MAX_WAIT_S,
        timeout=timedelta(hours=1).total_seconds(),
    )
    def wait_for_outcome(publication: dict[str, Any]) -> PokeReturnValue:
        from churnops_dags.tasks import poke_outcome

        return poke_outcome(publication)

    # TaskFlow hands the sensor the XCom value (a dict) at run time; mypy sees the XComArg.
    wait_for_outcome(publish_sweep_requested())  # type: ignore[arg-type]


dag_predict_new_data()
