"""The postgres init script, run for real against Postgres, twice (it must be idempotent)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "postgres" / "10-churnops-databases.sh"


@pytest.fixture
def database_names(postgres_admin_url: str) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    names = {"MLFLOW_POSTGRES_DB": f"ml-flow_{suffix}", "AIRFLOW_POSTGRES_DB": f"airflow_{suffix}"}
    yield names
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.services
def test_init_script_creates_the_databases_once(
    postgres_admin_url: str, database_names: dict[str, str]
) -> None:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    url = sa.make_url(postgres_admin_url)
    env = {
        **os.environ,
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGPASSWORD": url.password or "",
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_DB": url.database or "postgres",
        **database_names,
    }
    for _ in range(2):  # the second run finds them and changes nothing
        result = subprocess.run(
            ["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
    admin = sa.create_engine(postgres_admin_url)
    with admin.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT datname FROM pg_database WHERE datname = ANY(:names)"),
            {"names": list(database_names.values())},
        )
        assert sorted(row.datname for row in rows) == sorted(database_names.values())
    admin.dispose()
