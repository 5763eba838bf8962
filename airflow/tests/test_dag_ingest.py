"""dag_ingest: which sources are due, and one IngestRequested per due source, published once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from churnops_dags.ingest import due_requests, read_schedules


def test_each_source_is_due_in_the_hour_of_its_schedule(ingest_sources_file: Path) -> None:
    schedules = read_schedules(ingest_sources_file)
    assert schedules == {
        "daily_customers": "@daily",
        "morning_outcomes": "0 6 * * *",
        "on_demand": None,
    }
    at = lambda hour, minute=0: datetime(2026, 12, 7, hour, minute, tzinfo=UTC)  # noqa: E731
    assert due_requests(schedules, at(0)) == [
        {"source": "daily_customers", "logical_date": "2026-12-07"}
    ]
    assert due_requests(schedules, at(0, 30)) == [
        {"source": "daily_customers", "logical_date": "2026-12-07"}
    ]  # a late tick of the same hour
    assert due_requests(schedules, at(6)) == [
        {"source": "morning_outcomes", "logical_date": "2026-12-07"}
    ]
    assert due_requests(schedules, at(3)) == []
    assert due_requests(schedules, at(3), only=["on_demand"]) == [
        {"source": "on_demand", "logical_date": "2026-12-07"}
    ]
    with pytest.raises(ValueError, match=r"no source \['nope'\]"):
        due_requests(schedules, at(3), only=["nope"])


def test_a_missing_file_has_no_sources_and_a_bad_schedule_is_named(tmp_path: Path) -> None:
    assert read_schedules(tmp_path / "absent.yaml") == {}
    with pytest.raises(ValueError, match="'often' is not a cron schedule"):
        due_requests({"x": "often"}, datetime(2026, 12, 7, tzinfo=UTC))
