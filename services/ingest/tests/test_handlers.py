"""The IngestRequested handler on the shared dispatch path (as a worker runs it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from churnops_common.dispatch import handle_message
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import DataLanded, IngestRequested, to_wire
from churnops_common.settings import Settings
from churnops_ingest.handlers import on_ingest_requested

TASK = "churnops.ingest.on_ingest_requested"


@pytest.fixture
def platform(
    settings: Settings, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> EmbeddedPlatform:
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        "  crm:\n    kind: new_data\n"
        "    sql: {url_env: WAREHOUSE_URL, query: SELECT * FROM customers}\n"
        "  typo:\n    kind: new_data\n    sql: {url_env: WAREHOUSE_URL, query: SELEC 1}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("WAREHOUSE_URL", postgres_url)
    configured = settings.model_copy(update={"ingest_sources_file": sources})
    return EmbeddedPlatform(configured, services={"ingest"})


def test_the_handler_lands_the_snapshot_and_announces_it_once(
    platform: EmbeddedPlatform, warehouse: Callable[..., pd.DataFrame]
) -> None:
    warehouse("customers", 600)
    event = IngestRequested.start_chain("dag_ingest/run-1/crm", source="crm",
                                        logical_date=date(2026, 12, 1))  # fmt: skip
    outcome = handle_message(
        TASK, to_wire(event), on_ingest_requested, platform.runtime, final_attempt=True
    )
    assert outcome.status == "done"
    (landed,) = outcome.followups
    assert isinstance(landed, DataLanded) and landed.source == "ingest"
    assert landed.object.key.startswith("new_data/crm/2026-12-01-")
    assert landed.correlation_id == event.correlation_id
    # The same request delivered again is dropped by the ledger.
    again = handle_message(
        TASK, to_wire(event), on_ingest_requested, platform.runtime, final_attempt=True
    )
    assert again.status == "skipped"


def test_a_query_error_is_dead_lettered_with_the_database_reason(
    platform: EmbeddedPlatform,
) -> None:
    event = IngestRequested(source="typo", logical_date=date(2026, 12, 1))
    outcome = handle_message(
        TASK, to_wire(event), on_ingest_requested, platform.runtime, final_attempt=False
    )
    assert outcome.status == "dead_lettered"
    assert 'syntax error at or near "SELEC"' in outcome.detail
