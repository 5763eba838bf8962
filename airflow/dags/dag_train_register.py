"""
### dag_train_register (monthly)

Asks the **trainer** service for a scheduled retrain: Optuna search, MLflow run and
registration, then the challenger/champion comparison on the same untouched data. The
challenger gets the `champion` alias only if it beats the champion's PR-AUC by the configured
margin (`ModelPromoted`); otherwise the champion stays (`ModelRejected`).

1. `publish_retrain_requested` publishes one `RetrainRequested(reason="schedule")` (task
   `churnops.trainer.on_retrain_requested`, queue `trainer`). Its id comes from this DAG run, so
   a retry or a cleared re-run of the same run publishes nothing new.
2. `wait_for_outcome` polls `monitoring.processed_events` / `monitoring.dead_letters` until the
   trainer has handled it (success, whether or not the model was promoted) or the message was
   dead-lettered (failure). Training can take hours: the wait holds no worker slot meanwhile.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task
from churnops_dags.defaults import DEFAULT_ARGS, START_DATE, TAGS_BASE
from churnops_dags.waiting import wait_for_outcome


@dag(
    dag_id="dag_train_register",
    schedule="@monthly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS_BASE, "trainer", "mlflow"],
    doc_md=__doc__,
)
def dag_train_register() -> None:
    @task
    def publish_retrain_requested() -> dict[str, Any]:
        from airflow.sdk import get_current_context
        from churnops_dags.tasks import publish_kickoff

        run_id = get_current_context()["dag_run"].run_id
        return publish_kickoff(
            "RetrainRequested", {"reason": "schedule", "detail": f"dag_train_register {run_id}"}
        )

    # Above the bus's visibility timeout (4 h), so a redelivered training still counts.
    wait_for_outcome(timedelta(hours=10))(publish_retrain_requested())


dag_train_register()
