"""
### dag_monitoring (weekly)

Asks the **monitor** service for the weekly drift and performance report over the batches
scored since one week before this run (`MonitoringRequested.since`). Reports land in
`reports/monitoring/`; the monitor raises `PerformanceDegraded` (and alerts) when live
performance fell below its threshold.

1. `publish_monitoring_requested` publishes one `MonitoringRequested` (task
   `churnops.monitor.on_monitoring_requested`, queue `monitor`). Its id comes from this DAG run,
   so a retry or a cleared re-run of the same run publishes nothing new.
2. `wait_for_outcome` polls `monitoring.processed_events` / `monitoring.dead_letters` until the
   monitor has handled it (success) or the message was dead-lettered (failure).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task
from churnops_dags.defaults import DEFAULT_ARGS, START_DATE, TAGS_BASE
from churnops_dags.waiting import wait_for_outcome

REPORT_WINDOW = timedelta(weeks=1)


@dag(
    dag_id="dag_monitoring",
    schedule="@weekly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS_BASE, "monitor", "drift"],
    doc_md=__doc__,
)
def dag_monitoring() -> None:
    @task
    def publish_monitoring_requested() -> dict[str, Any]:
        from airflow.sdk import get_current_context
        from churnops_dags.tasks import publish_kickoff

        # From the run's own time (fixed for the run), so every try builds the same event.
        run_after = get_current_context()["dag_run"].run_after
        return publish_kickoff("MonitoringRequested", {"since": run_after - REPORT_WINDOW})

    wait_for_outcome(timedelta(hours=3))(publish_monitoring_requested())


dag_monitoring()
