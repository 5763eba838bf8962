"""
### dag_ingest (hourly tick, each source on its own schedule)

Asks the **ingest** service to land each warehouse query or API named in the sources file
(`INGEST_SOURCES_FILE`, `docker/ingest/sources.yaml` in the stack) when its schedule is due.

1. `due_sources` reads the sources' names and schedules (never their credentials) and lists
   those whose latest scheduled time falls in this run's hour; a manual run can name sources
   in its conf (`{"sources": ["crm_customers"]}`) to land them now.
2. `publish_ingest_requested` (one mapped task per due source) publishes an `IngestRequested`
   event (task `churnops.ingest.on_ingest_requested`, queue `ingest`) with the source and its
   logical date. Its id comes from this DAG run and the source, so a retry or a cleared re-run
   publishes nothing new; and the snapshot key (source, query, logical date) means a re-run of
   the ingest itself lands nothing new either.
3. `wait_for_outcome` (mapped too) polls the ledger until the ingest handler has finished or
   its message was dead-lettered (an unreachable database after its retries, a query error, an
   empty result, a changed result under the same date).

The landed file is then handled like any other: validation, then scoring or training.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task
from churnops_dags.defaults import DEFAULT_ARGS, START_DATE, TAGS_BASE
from churnops_dags.waiting import wait_for_outcome


@dag(
    dag_id="dag_ingest",
    schedule="@hourly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS_BASE, "ingest", "warehouse"],
    doc_md=__doc__,
)
def dag_ingest() -> None:
    @task
    def due_sources() -> list[dict[str, Any]]:
        from airflow.sdk import get_current_context
        from churnops_dags.ingest import due_requests, read_schedules, sources_file

        context = get_current_context()
        dag_run = context["dag_run"]
        tick = dag_run.logical_date or dag_run.run_after
        only = (dag_run.conf or {}).get("sources")
        return due_requests(read_schedules(sources_file()), tick, only)

    @task
    def publish_ingest_requested(request: dict[str, Any]) -> dict[str, Any]:
        from churnops_dags.tasks import publish_kickoff

        return publish_kickoff("IngestRequested", request, discriminator=request["source"])

    published = publish_ingest_requested.expand(request=due_sources())
    wait_for_outcome(timedelta(hours=6)).expand(publication=published)


dag_ingest()
