"""The kickoff helpers on their own: deterministic events per DAG run, and the outcome verdict."""

from __future__ import annotations

import pytest
from churnops_dags.kickoff import Publication, build_event, chain_key, judge, subscriber_tasks

from churnops_common.events import RetrainRequested, stable_id

QUALITY_TASK = "churnops.quality.on_quality_requested"


def test_the_same_dag_run_builds_the_same_event() -> None:
    first = build_event(
        "RetrainRequested", "dag_train_register", "scheduled__2026-02-01", {"reason": "schedule"}
    )
    again = build_event(
        "RetrainRequested", "dag_train_register", "scheduled__2026-02-01", {"reason": "schedule"}
    )
    assert isinstance(first, RetrainRequested)
    assert first.event_id == again.event_id == first.correlation_id
    assert first.event_id == stable_id(
        "RetrainRequested", chain_key("dag_train_register", "scheduled__2026-02-01")
    )


def test_another_run_or_dag_builds_another_event() -> None:
    base = build_event("QualityRequested", "dag_data_quality_psi", "run-1", {}).event_id
    assert build_event("QualityRequested", "dag_data_quality_psi", "run-2", {}).event_id != base
    assert build_event("QualityRequested", "other_dag", "run-1", {}).event_id != base


def test_a_run_that_publishes_several_gets_one_chain_per_item() -> None:
    fields = {"source": "crm", "logical_date": "2026-12-07"}
    crm = build_event("IngestRequested", "dag_ingest", "run-1", fields, "crm")
    other = build_event("IngestRequested", "dag_ingest", "run-1", {**fields, "source": "x"}, "x")
    assert crm.event_id == stable_id("IngestRequested", "dag_ingest/run-1/crm")
    assert crm.event_id != other.event_id
    assert subscriber_tasks("IngestRequested") == ["churnops.ingest.on_ingest_requested"]


def test_unknown_event_type_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown event type 'Nope'"):
        build_event("Nope", "d", "r", {})


def test_invalid_fields_are_rejected_by_the_contract() -> None:
    with pytest.raises(ValueError, match="reason"):
        build_event("RetrainRequested", "d", "r", {"reason": "because"})


def test_each_kickoff_has_exactly_its_service_as_subscriber() -> None:
    assert subscriber_tasks("QualityRequested") == [QUALITY_TASK]
    assert subscriber_tasks("SweepRequested") == ["churnops.quality.on_sweep_requested"]
    assert subscriber_tasks("RetrainRequested") == ["churnops.trainer.on_retrain_requested"]
    assert subscriber_tasks("MonitoringRequested") == ["churnops.monitor.on_monitoring_requested"]


def test_publication_survives_the_xcom_round_trip() -> None:
    publication = Publication("QualityRequested", "e1", "e1", [QUALITY_TASK], True, "published")
    assert Publication.from_xcom(publication.to_xcom()) == publication


@pytest.mark.parametrize(
    ("statuses", "dead", "verdict"),
    [
        ({}, {}, "waiting"),  # still queued
        ({QUALITY_TASK: "running"}, {}, "waiting"),
        ({QUALITY_TASK: "failed"}, {}, "waiting"),  # transient failure, retry pending
        ({QUALITY_TASK: "done"}, {}, "done"),
        ({QUALITY_TASK: "failed"}, {QUALITY_TASK: "PermanentError: bad"}, "failed"),
        ({}, {QUALITY_TASK: "invalid event payload"}, "failed"),
        ({QUALITY_TASK: "done"}, {QUALITY_TASK: "an older delivery"}, "done"),  # redone since
    ],
)
def test_judge_one_subscriber(statuses: dict[str, str], dead: dict[str, str], verdict: str) -> None:
    assert judge([QUALITY_TASK], statuses, dead) == verdict


def test_judge_waits_for_every_subscriber_and_fails_on_any() -> None:
    tasks = ["a", "b"]
    assert judge(tasks, {"a": "done"}, {}) == "waiting"
    assert judge(tasks, {"a": "done", "b": "done"}, {}) == "done"
    assert judge(tasks, {"a": "done", "b": "running"}, {"b": "boom"}) == "failed"
    assert judge(tasks, {"a": "done", "b": "done", "c": "failed"}, {"c": "other task"}) == "done"


def test_airflow_refuses_the_embedded_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    from churnops_dags.kickoff import platform_settings

    from churnops_common.settings import ConfigError

    monkeypatch.delenv("MONITORING_DB_URL", raising=False)
    with pytest.raises(ConfigError, match="CHURNOPS_MODE=stack"):
        platform_settings()
    monkeypatch.setenv("CHURNOPS_MODE", "stack")
    monkeypatch.setenv("POSTGRES_HOST", "postgres")
    assert platform_settings().monitoring_url().startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in platform_settings().monitoring_url()
