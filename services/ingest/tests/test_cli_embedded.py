"""`churnops ingest` in embedded mode: a warehouse table is validated, trained on, and scored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from churnops_common.cli import main
from churnops_common.settings import get_settings
from churnops_common.storage import object_store_from_settings

pytestmark = pytest.mark.slow


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object], str]:
    code = main(["ingest", *args])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if lines and code == 0 else {}), captured.err


@pytest.fixture
def sources(
    warehouse: Callable[..., pd.DataFrame],
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    warehouse("history", 2_000, seed=1)
    warehouse("customers", 700, seed=2, target=False)
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n"
        "  crm_customers:\n"
        "    kind: new_data\n"
        "    schedule: '@daily'\n"
        "    sql:\n"
        "      url_env: WAREHOUSE_URL\n"
        "      query: SELECT * FROM customers\n"
        "  crm_broken:\n"
        "    kind: new_data\n"
        "    sql:\n"
        "      url_env: WAREHOUSE_URL\n"
        "      query: SELECT customer_id, age FROM customers\n",
        encoding="utf-8",
    )
    for key, value in {
        "WAREHOUSE_URL": postgres_url,
        "INGEST_SOURCES_FILE": str(path),
        "INGEST_BATCH_ROWS": "250",
        "OPTUNA_N_TRIALS": "2",
        "QUALITY_MLFLOW_ENABLED": "false",
        "QUALITY_PDF_ENABLED": "false",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return path


def test_a_warehouse_table_is_trained_on_then_scored_and_a_rerun_lands_nothing(
    sources: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "SELECT * FROM history"
    code, training, err = _run(
        capsys, "--url", postgres_url, "--query", query, "--kind", "training",
        "--date", "2026-12-01", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert training["created"] is True and training["rows"] == 2_000
    assert "ModelPromoted" in training["events"]  # type: ignore[operator]

    code, scored, err = _run(capsys, "crm_customers", "--date", "2026-12-01", "--json")
    assert code == 0, err
    assert scored["created"] is True and scored["rows"] == 700
    assert str(scored["object"]).startswith("s3://landing/new_data/crm_customers/2026-12-01-")
    assert {"DataValidated", "BatchScored"} <= set(scored["events"])  # type: ignore[arg-type]

    code, again, err = _run(capsys, "crm_customers", "--date", "2026-12-01", "--json")
    assert code == 0, err
    assert again["created"] is False and again["object"] == scored["object"]
    assert again["events"] == ["DataLanded"]  # quality's ledger drops it: nothing follows
    store = object_store_from_settings(get_settings())
    landed = [o.key for o in store.list_objects("landing", "new_data/")]
    assert landed == [str(scored["object"]).removeprefix("s3://landing/")]

    # A result that breaks the champion's contract is rejected by quality, as any file would be.
    code, broken, err = _run(capsys, "crm_broken", "--date", "2026-12-01", "--json")
    assert code == 0, err
    assert "DataRejected" in broken["events"]  # type: ignore[operator]


def test_bad_sources_fail_in_one_line(
    sources: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = _run(capsys, "no_such_source")
    assert code == 2 and "no source 'no_such_source'" in err and "crm_customers" in err
    code, _, err = _run(capsys, "--url", "postgresql+psycopg://x:pw@127.0.0.1:1/db",
                        "--query", "SELECT 1")  # fmt: skip
    assert code == 2 and "cannot connect" in err and ":pw@" not in err
    monkeypatch.delenv("WAREHOUSE_URL")
    get_settings.cache_clear()
    code, _, err = _run(capsys, "crm_customers")
    assert code == 2 and "WAREHOUSE_URL" in err
    assert len(err.strip().splitlines()) == 1
