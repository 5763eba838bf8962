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

from airflow.sdk import dag, task
from churnops_dags.defaults import DEFAULT_ARGS, START_DATE, TAGS_BASE
from churnops_dags.waiting import wait_for_outcome


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

    wait_for_outcome(timedelta(hours=1))(publish_sweep_requested())


dag_predict_new_data()
