"""
### dag_data_quality_psi (daily)

Asks the **quality** service to run the data-quality and PSI check on the latest landed batch.

1. `publish_quality_requested` publishes one `QualityRequested` event (task
   `churnops.quality.on_quality_requested`, queue `quality`). Its id comes from this DAG run, so
   a retry or a cleared re-run of the same run publishes nothing new.
2. `wait_for_outcome` polls `monitoring.processed_events` / `monitoring.dead_letters` until the
   quality handler has finished (success) or its message was dead-lettered (failure). Between
   polls it holds no worker slot (reschedule mode).

The check itself (validation, PSI against the baseline profile, `PsiBreached` when a feature
drifts) runs in the quality worker, not here. Reports land in `reports/<run_id>/`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task
from churnops_dags.defaults import DEFAULT_ARGS, START_DATE, TAGS_BASE
from churnops_dags.waiting import wait_for_outcome


@dag(
    dag_id="dag_data_quality_psi",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS_BASE, "quality", "psi"],
    doc_md=__doc__,
)
def dag_data_quality_psi() -> None:
    @task
    def publish_quality_requested() -> dict[str, Any]:
        from churnops_dags.tasks import publish_kickoff

        return publish_kickoff("QualityRequested")

    wait_for_outcome(timedelta(hours=2))(publish_quality_requested())


dag_data_quality_psi()
