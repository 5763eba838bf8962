"""The DAG folder parses cleanly and every DAG keeps the team's conventions."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from conftest import DAGS_DIR

EXPECTED = {
    # dag_id: (schedule, publishing task, event type)
    "dag_data_quality_psi": ("@daily", "publish_quality_requested", "QualityRequested"),
    "dag_train_register": ("@monthly", "publish_retrain_requested", "RetrainRequested"),
    "dag_predict_new_data": ("@daily", "publish_sweep_requested", "SweepRequested"),
    "dag_monitoring": ("@weekly", "publish_monitoring_requested", "MonitoringRequested"),
    "dag_ingest": ("@hourly", "publish_ingest_requested", "IngestRequested"),
}
# Tasks a DAG has before its publish (dag_ingest lists the sources due in the run).
EXTRA_TASKS = {"dag_ingest": {"due_sources"}}


@cache
def dagbag() -> Any:
    """Parsed as the DAG processor does: a bundle bag puts the DAG folder on sys.path."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=DAGS_DIR, bundle_path=DAGS_DIR, bundle_name="dags-folder")


def test_dag_folder_imports_without_errors() -> None:
    bag = dagbag()
    assert bag.import_errors == {}
    assert set(bag.dags) == set(EXPECTED)


def test_no_warnings_from_our_dag_files() -> None:
    """Warnings raised by Airflow's own modules during parsing are theirs; ours must be none."""
    ours = [
        warning
        for warnings in dagbag().captured_warnings.values()
        for warning in warnings
        if str(DAGS_DIR) in warning.split(":", 1)[0]
    ]
    assert ours == []


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_conventions(dag_id: str) -> None:
    schedule, publish_task, _ = EXPECTED[dag_id]
    dag = dagbag().dags[dag_id]
    assert dag.schedule == schedule
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.start_date is not None
    assert dag.start_date.tzinfo is not None
    assert dag.start_date < datetime.now(UTC)
    assert "churnops" in dag.tags
    assert len(dag.tags) >= 3
    assert dag.doc_md
    assert dag_id in dag.doc_md
    assert set(dag.task_dict) == {publish_task, "wait_for_outcome", *EXTRA_TASKS.get(dag_id, ())}
    for task in dag.tasks:
        assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_wait_is_a_rescheduling_sensor_with_a_timeout(dag_id: str) -> None:
    dag = dagbag().dags[dag_id]
    wait = dag.task_dict["wait_for_outcome"]
    publish = dag.task_dict[EXPECTED[dag_id][1]]
    assert _setting(wait, "mode") == "reschedule"
    assert 0 < _setting(wait, "timeout") <= 24 * 3600
    assert wait.upstream_task_ids == {publish.task_id}


def _setting(task: Any, name: str) -> Any:
    """A task's argument; a mapped task (one per ingest source) keeps it in `partial_kwargs`."""
    partial = getattr(task, "partial_kwargs", None)
    return partial[name] if partial is not None else getattr(task, name)


def test_parsing_imports_nothing_heavy() -> None:
    """The DAG processor parses these files every few seconds: no bus client, no spine, no ML."""
    code = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        f"bag = BundleDagBag({str(DAGS_DIR)!r}, bundle_path={str(DAGS_DIR)!r},"
        " bundle_name='dags-folder')\n"
        "assert not bag.import_errors, bag.import_errors\n"
        # psycopg is absent here: Airflow itself loads it for its Postgres metadata database.
        "heavy = ('celery', 'kombu', 'redis', 'churnops_common', 'pandas', 'sklearn')\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
