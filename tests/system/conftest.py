"""The system-test stack: started once for the session, figures printed at the end."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.figures import FIGURES, write_numbers
from tests.system.harness import LocalStack

_STARTED = time.monotonic()
# What the scenarios need beyond compose's defaults: a size limit the huge-file case can cross
# cheaply (above the 400k-row, ~37 MB batch of the kill scenario), and unseen categories as a
# rejection (the brief's bad-input list; the default only warns).
# A trial of a killed trainer is run again within seconds, not a minute (the trainer-kill case).
STACK_SETTINGS = {
    "QUALITY_MAX_FILE_MB": "48",
    "QUALITY_REJECT_UNSEEN_CATEGORIES": "true",
    "TRAINER_TRIAL_HEARTBEAT_S": "2",
    "TRAINER_TRIAL_GRACE_S": "10",
}


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin_url: str,
    minio_fixtures_dir_session: Path,
) -> Iterator[LocalStack]:
    if os.environ.get("CHURNOPS_KEEP_LOGS"):  # outside pytest's temp dirs, which rotate
        workdir = Path(tempfile.mkdtemp(prefix="churnops-system-test-"))
    else:
        workdir = tmp_path_factory.mktemp("stack")
    template = (minio_fixtures_dir_session / "redis-access-element.json").read_bytes()
    stack = LocalStack(workdir, postgres_admin_url, template, extra_env=dict(STACK_SETTINGS))
    started = time.monotonic()
    try:
        stack.start()
        FIGURES["stack start (s)"] = f"{time.monotonic() - started:.1f}"
        yield stack
    finally:
        if os.environ.get("CHURNOPS_KEEP_LOGS"):
            FIGURES["worker logs kept in"] = str(workdir)
        stack.stop()


@pytest.fixture(scope="session")
def minio_fixtures_dir_session() -> Path:
    default = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
    path = Path(os.environ.get("CHURNOPS_FIXTURES_DIR", default)) / "minio"
    if not path.is_dir():
        pytest.skip(f"MinIO fixtures not found at {path} (they live beside the repository)")
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    FIGURES["session wall time (s)"] = f"{time.monotonic() - _STARTED:.0f}"
    written = write_numbers()
    if written is not None:
        FIGURES["figures as JSON"] = str(written)
    terminalreporter.section("ChurnOps system test figures")
    width = max(len(k) for k in FIGURES)
    for key, value in FIGURES.items():
        terminalreporter.write_line(f"{key:<{width}}  {value}")
