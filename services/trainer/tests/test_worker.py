"""The task path: a real trainer worker process over real Redis, Postgres and an MLflow store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnops_common.bus.celery_bus import CeleryBus
from churnops_common.bus.local_bus import LocalBus
from churnops_common.celery_app import make_celery
from churnops_common.db.engine import make_engine
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import model_promotions, processed_events
from churnops_common.events import DataValidated, ObjectRef
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_common.synthetic import generate

pytestmark = pytest.mark.services
REDIS_DB = 12  # this test's own Redis database: queues here are nobody else's
QUEUES = ("trainer", "scorer", "quality", "monitor")


@pytest.fixture
def worker_env(
    tmp_path: Path, postgres_url: str, redis_url: str, mlflow_template: Path
) -> dict[str, str]:
    shutil.copyfile(mlflow_template, tmp_path / "mlflow.db")
    return {
        "CHURNOPS_MODE": "embedded",  # local object store; Redis and Postgres are real
        "CHURNOPS_HOME": str(tmp_path / "home"),
        "REDIS_URL": redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}",
        "MONITORING_DB_URL": postgres_url,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "OPTUNA_N_TRIALS": "2",
        "TRAINER_N_JOBS": "1",
    }


@pytest.fixture
def worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    from redis import Redis

    Redis.from_url(worker_env["REDIS_URL"]).delete(*QUEUES)
    upgrade(make_engine(worker_env["MONITORING_DB_URL"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CHURNOPS_"))}
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "churnops_trainer.worker:app",
            "worker",
            "-Q",
            "trainer",
            "--pool",
            "solo",
            "-n",
            "test-trainer@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        env={**env, **worker_env},
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    Redis.from_url(worker_env["REDIS_URL"]).delete(*QUEUES)
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def _wait_for(
    check: Callable[[], bool], what: str, worker: subprocess.Popen[bytes], timeout: float = 240.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        assert worker.poll() is None, "the worker died"
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_validated_training_set_over_redis_trains_once_and_publishes_the_promotion(
    worker: subprocess.Popen[bytes],
    worker_env: dict[str, str],
    land_table: Callable[..., ObjectRef],
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient
    from redis import Redis

    settings = Settings(
        churnops_mode="embedded",
        churnops_home=Path(worker_env["CHURNOPS_HOME"]),
        monitoring_db_url=worker_env["MONITORING_DB_URL"],
        redis_url=worker_env["REDIS_URL"],
        _env_file=None,
    )
    runtime = Runtime.from_settings(settings, LocalBus({}))
    ref = land_table(runtime, generate(1200, seed=1), "training/t.csv", "training", tmp=tmp_path)
    event = DataValidated.start_chain(
        ref.versioned_uri,
        object=ref,
        kind="training",
        quality_run_id="q",
        rows=1200,
        has_target=True,
    )
    bus = CeleryBus(make_celery("test-producer", settings))
    bus.publish(event)
    bus.publish(event)  # delivered twice: trained once

    engine = runtime.engine

    def decided() -> bool:
        with engine.connect() as conn:
            return bool(
                conn.execute(sa.select(sa.func.count()).select_from(model_promotions)).scalar()
            )

    _wait_for(decided, "the promotion decision", worker)
    redis = Redis.from_url(worker_env["REDIS_URL"])
    _wait_for(
        lambda: redis.llen("trainer") == 0 and redis.llen("scorer") >= 1,
        "the queue to drain and ModelPromoted to reach the scorer queue",
        worker,
    )
    time.sleep(1.0)  # the twin, were it trained, would be registering by now
    with engine.connect() as conn:
        audit = conn.execute(sa.select(model_promotions)).all()
        ledger = conn.execute(sa.select(processed_events)).all()
    assert [(a.challenger_version, a.decision) for a in audit] == [("1", "promoted")]
    assert [(r.task_name, r.status) for r in ledger] == [
        ("churnops.trainer.on_data_validated", "done")
    ]
    message = json.loads(redis.lindex("scorer", 0))  # kombu's envelope around the task
    body = json.loads(__import__("base64").b64decode(message["body"]))
    promoted = body[0][0]
    assert promoted["event_type"] == "ModelPromoted"
    assert promoted["model_version"] == "1" and promoted["correlation_id"] == event.correlation_id
    assert promoted["training_data"]["bucket"] == "models"
    client = MlflowClient(tracking_uri=worker_env["MLFLOW_TRACKING_URI"])
    assert str(client.get_model_version_by_alias("churn-model", "champion").version) == "1"
    engine.dispose()
