"""Fixtures for every test in the repository (services' tests included).

Real services: tests marked `services` use this machine's Redis and Postgres. Where one is
absent they skip with the reason, unless CHURNOPS_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
# Beside the repository; CHURNOPS_DATASETS_DIR and CHURNOPS_FIXTURES_DIR point elsewhere (a
# worktree in another folder).
DATASETS = Path(os.environ.get("CHURNOPS_DATASETS_DIR", ROOT.parent / "shared" / "datasets"))
FIXTURES = Path(os.environ.get("CHURNOPS_FIXTURES_DIR", ROOT.parent / "shared" / "fixtures"))
POSTGRES_URL = os.environ.get(
    "CHURNOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CHURNOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(reason: str) -> None:
    """Skip on a laptop without the service; fail in CI, where it must be there."""
    if os.environ.get("CHURNOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service absent: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's .env or writes into the working tree."""
    from churnops_common.settings import get_settings

    saved = dict(os.environ)  # libraries export settings too (MLflow sets MLFLOW_TRACKING_URI)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "home"))
    # Reports before a command returns: no detached process outlives its test (one test
    # covers the detached path).
    monkeypatch.setenv("COMMAND_REPORTS", "inline")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    os.environ.clear()
    os.environ.update(saved)
    _reset_mlflow()


def _reset_mlflow() -> None:
    """MLflow keeps a process-wide tracking URI, active experiment and run: no leaks."""
    import sys

    if "mlflow" not in sys.modules:
        return
    import mlflow
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    while mlflow.active_run() is not None:
        mlflow.end_run()
    tracking_utils._tracking_uri = None
    fluent._active_experiment_id = None


@pytest.fixture
def embedded_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    from churnops_common.settings import Settings

    return Settings(churnops_mode="embedded", churnops_home=tmp_path / "home", _env_file=None)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        service_missing(f"Postgres at {POSTGRES_URL} unreachable: {exc.__class__.__name__}")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    import sqlalchemy as sa

    name = f"churnops_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        service_missing(f"Redis at {REDIS_URL} unreachable: {exc.__class__.__name__}")
    return REDIS_URL


@pytest.fixture
def datasets_dir() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {DATASETS} (they live beside the repository)")
    return DATASETS


@pytest.fixture
def minio_fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"MinIO fixtures not found at {FIXTURES} (they live beside the repository)")
    return FIXTURES / "minio"


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    """An S3 server (moto, the stand-in for MinIO) on a free local port, for one test."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
def parsed_files(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files the one reader parses (rather than takes from a kept read), in order."""
    from churnops_common import tabular

    parsed: list[Path] = []
    parse = tabular._parsed

    def counting(path: Path, chunk_rows: int, wanted: list[str]) -> object:
        parsed.append(path)
        return parse(path, chunk_rows, wanted)

    monkeypatch.setattr(tabular, "_parsed", counting)
    return parsed
