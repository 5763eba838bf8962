"""Fixtures for the Airflow project's tests (its own environment: `cd airflow && uv run pytest`).

Airflow reads its configuration when first imported, so `pytest_configure` points it at a
private AIRFLOW_HOME and metadata database before any test module is collected: a fresh Postgres
database (psycopg 3, the driver the stack uses) when Postgres answers, else SQLite in the home.

Real services, as in the repository's root conftest: tests marked `services` use this machine's
Redis and Postgres, skip where one is absent, and fail instead when CHURNOPS_REQUIRE_SERVICES=1.
The event bus runs on a private Redis database number (9 by default), never on database 0.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

AIRFLOW_DIR = Path(__file__).resolve().parents[1]
DAGS_DIR = AIRFLOW_DIR / "dags"
POSTGRES_URL = os.environ.get(
    "CHURNOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CHURNOPS_TEST_AIRFLOW_REDIS_URL", "redis://127.0.0.1:6379/9")

_state: dict[str, str] = {}


def service_missing(reason: str) -> None:
    """Skip on a laptop without the service; fail in CI, where it must be there."""
    if os.environ.get("CHURNOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service absent: {reason}")
    pytest.skip(reason)


def _postgres_problem() -> str | None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"Postgres at {POSTGRES_URL} unreachable: {exc.__class__.__name__}"
    return None


def _create_database(prefix: str) -> str:
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_database(url: str) -> None:
    import sqlalchemy as sa

    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="churnops-airflow-home-"))
    _state["home"] = str(home)
    problem = _postgres_problem()
    if problem is None:
        metadata_url = _create_database("churnops_airflow_meta")
        _state["metadata_url"] = metadata_url
    else:
        _state["postgres_problem"] = problem
        metadata_url = f"sqlite:///{home / 'airflow.db'}"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            # The waits poll every second or two here, not every 30 s.
            "CHURNOPS_AIRFLOW_POKE_INTERVAL_S": "1",
            "CHURNOPS_AIRFLOW_POKE_MAX_WAIT_S": "2",
        }
    )
    if problem is None:
        # Airflow 3 derives its async URL from the sync one, which fails for psycopg 3: the
        # same `postgresql+psycopg://` URL serves both (psycopg 3 is sync and async).
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = metadata_url


def pytest_unconfigure(config: pytest.Config) -> None:
    airflow_settings = sys.modules.get("airflow.settings")
    if airflow_settings is not None:  # close Airflow's connections before dropping its database
        airflow_settings.dispose_orm()
    if "metadata_url" in _state:
        try:
            _drop_database(_state["metadata_url"])
        except Exception as exc:  # a leftover test database is not worth a failed run
            print(f"could not drop {_state['metadata_url']}: {exc}", file=sys.stderr)
    if "home" in _state:
        shutil.rmtree(_state["home"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's .env or writes into the working tree."""
    from churnops_common.settings import get_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CHURNOPS_MODE", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """The metadata database, migrated once per session (`airflow db migrate`)."""
    if "postgres_problem" in _state:
        service_missing(_state["postgres_problem"])
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    if done.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return _state["metadata_url"]


@pytest.fixture
def monitoring_url() -> Iterator[str]:
    """A fresh monitoring database with the platform's migrations, dropped afterwards."""
    if "postgres_problem" in _state:
        service_missing(_state["postgres_problem"])
    from churnops_common.db.engine import make_engine
    from churnops_common.db.migrations import upgrade

    url = _create_database("churnops_airflow_mon")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    _drop_database(url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        service_missing(f"Redis at {REDIS_URL} unreachable: {exc.__class__.__name__}")
    return REDIS_URL


@pytest.fixture
def platform_env(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, monitoring_url: str
) -> dict[str, str]:
    """The platform settings the DAGs and the test worker read: private Redis DB, fresh ledger."""
    from churnops_common.settings import get_settings

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MONITORING_DB_URL", monitoring_url)
    get_settings.cache_clear()
    return {"redis_url": redis_url, "monitoring_url": monitoring_url}


# dag_ingest: a sources file with a daily, a morning and an on-demand source.
INGEST_SOURCES = (
    "sources:\n"
    "  daily_customers:\n    kind: new_data\n    schedule: '@daily'\n"
    "    sql: {url_env: WAREHOUSE_URL, query: SELECT * FROM customers}\n"
    "  morning_outcomes:\n    kind: labels\n    schedule: '0 6 * * *'\n"
    "    http: {url: 'https://crm.example.com/outcomes'}\n"
    "  on_demand:\n    kind: training\n"
    "    sql: {url_env: WAREHOUSE_URL, query: SELECT * FROM history}\n"
)


@pytest.fixture
def ingest_sources_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(INGEST_SOURCES, encoding="utf-8")
    monkeypatch.setenv("INGEST_SOURCES_FILE", str(path))
    return path
