"""A database outage loses nothing: Postgres stopped for minutes during a burst of files.

This scenario stops the database, so it runs on its own stack over a private Postgres cluster
(initdb + pg_ctl in a temporary folder, on a free port), as the shared stack runs a private
Redis. Messages that fail while Postgres is down are retried with backoff for a time budget
(TASK_RETRY_BUDGET_S, 30 minutes by default), and one whose outcome cannot be recorded is not
acked: when the database returns, every batch is scored exactly once.

Run alone: `pytest -m system tests/system -k outage` (about ten minutes, most of it the outage;
CHURNOPS_OUTAGE_S shortens it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.figures import FIGURES
from tests.system.harness import LocalStack, free_port
from tests.system.inputs import batch_csv
from tests.system.test_system import (
    TRAINING_ROWS,
    assert_scored_once,
    promotions,
    wait_scored,
)

pytestmark = [pytest.mark.system, pytest.mark.services, pytest.mark.timeout(2400)]

BURST_FILES = 20
OUTAGE_S = float(os.environ.get("CHURNOPS_OUTAGE_S", "300"))


class PrivatePostgres:
    """A throwaway cluster of the installed PostgreSQL, trust auth on 127.0.0.1 only."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="churnops-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to `postgres`
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self.start()

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def outage_stack(
    tmp_path_factory: pytest.TempPathFactory, minio_fixtures_dir_session: Path
) -> Iterator[tuple[LocalStack, PrivatePostgres]]:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    postgres = PrivatePostgres().init()
    template = (minio_fixtures_dir_session / "redis-access-element.json").read_bytes()
    stack = LocalStack(
        tmp_path_factory.mktemp("outage-stack"),
        postgres.admin_url,
        template,
        scorers=2,
        trainers=1,
        extra_env={"TASK_RETRY_BUDGET_S": "1800", "OPTUNA_N_TRIALS": "3"},
    )
    try:
        yield stack.start(), postgres
    finally:
        if postgres.data.is_dir():
            # Running again (if the test stopped it) so the stack can drop its databases.
            with contextlib.suppress(subprocess.CalledProcessError):
                postgres.start()
        stack.stop()
        postgres.remove()


def test_outage_of_postgres_during_a_burst_loses_nothing(
    outage_stack: tuple[LocalStack, PrivatePostgres], tmp_path: Path
) -> None:
    stack, postgres = outage_stack
    stack.upload(
        batch_csv(tmp_path, "train.csv", TRAINING_ROWS, seed=1, target=True), "training/t.csv"
    )
    stack.wait_until(lambda: promotions(stack) == 1, 600, "the first champion")
    stack.wait_idle()
    keys = [f"new_data/outage/file-{n:02d}.csv" for n in range(BURST_FILES)]
    infos = [
        stack.upload(batch_csv(tmp_path, f"o{n}.csv", 300, seed=200 + n), key, notify=False)
        for n, key in enumerate(keys)
    ]
    for key, info in zip(keys, infos, strict=True):
        stack.notify(key, info.etag, info.size)
    time.sleep(1.0)  # the burst is in flight: some files handled, most queued or running

    started = time.monotonic()
    postgres.stop()
    time.sleep(OUTAGE_S)
    postgres.start()
    stack.reset_connections()
    recovered = wait_scored(stack, keys, OUTAGE_S + 900)
    stack.wait_idle(timeout=300)

    for key in keys:
        assert_scored_once(stack, key)
    assert stack.count("SELECT count(*) FROM monitoring.dead_letters") == 0
    assert stack.unexpectedly_down() == []
    FIGURES["postgres outage"] = (
        f"{BURST_FILES} files, Postgres down {OUTAGE_S:.0f}s: all scored once,"
        f" {time.monotonic() - started:.0f}s from the stop ({recovered:.0f}s waiting after it)"
    )
