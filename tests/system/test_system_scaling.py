"""Scaling out on the stack as local processes: one training over two trainers (one of them
killed mid-trial), and the scorer's throughput on a burst with one and with two processes.

Last in file order (the lifecycle scenario counts promotions from the first training): each
scenario brings what it needs (a training set, a champion) itself, so `-k` runs it alone.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from churnops_common.bus.celery_bus import CeleryBus
from churnops_common.events import DataValidated, ObjectRef, RetrainRequested
from tests.system.figures import FIGURES, NUMBERS
from tests.system.harness import LocalStack, children_of
from tests.system.inputs import batch_csv

pytestmark = [pytest.mark.system, pytest.mark.services, pytest.mark.timeout(900)]

TRIALS_TASK = "churnops.trainer.on_trials_requested"
SCORE_TASK = "churnops.scorer.on_data_validated"
KILL_TRAINING_ROWS = 30_000  # trials of seconds each: the kill lands inside one
BURST_FILES = 12
BURST_ROWS = 5_000


def _upload(stack: LocalStack, path: Path, key: str) -> ObjectRef:
    """Into the landing bucket without a notification: the scenario publishes what follows."""
    info = stack.upload(path, key, notify=False)
    return ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)


def _training(stack: LocalStack, correlation_id: str) -> dict[str, object] | None:
    rows = stack.rows(
        "SELECT run_id, status, detail, model_version FROM monitoring.training_runs"
        " WHERE correlation_id = :c",
        c=correlation_id,
    )
    return dict(rows[0]._mapping) if rows else None


def _study(stack: LocalStack, run_id: str) -> optuna.Study:
    name = f"{stack.settings.mlflow_model_name}-{run_id[:36]}"
    return optuna.load_study(study_name=name, storage=stack.settings.monitoring_url())


def _retrain(stack: LocalStack, ref: ObjectRef, what: str) -> RetrainRequested:
    event = RetrainRequested.start_chain(
        f"system-test-{what}-{uuid.uuid4()}", reason="manual", detail=what, data=ref
    )
    stack.publish(event)
    return event


# ---- one training over two trainers, one killed mid-trial --------------------------------------
def test_trainer_killed_mid_trial_the_training_keeps_its_full_budget(
    stack: LocalStack, tmp_path: Path
) -> None:
    """SIGKILL of the trainer process running a helper's trial: the training finishes with
    exactly its budget of trials and registers its version.

    What is killed: the prefork pool process of the trainer running a TrialsRequested task
    (found with `celery inspect active`), while the study shows a trial it took as running.
    Its trial stops beating; after TRAINER_TRIAL_GRACE_S a puller fails it and Optuna's retry
    callback enqueues it again with the same parameters; the coordinator (the other trainer,
    holding the training lock) keeps pulling until the budget is finished. The worker's main
    process puts the killed task back on the queue (task_reject_on_worker_lost), so the
    replacement pool process joins the search again.
    """
    assert len(stack.workers("trainer")) == 2
    stack.wait_idle()
    budget = stack.settings.optuna_n_trials
    path = batch_csv(tmp_path, "kill-train.csv", KILL_TRAINING_ROWS, seed=91, target=True)
    ref = _upload(stack, path, "training/scaling/kill-mid-trial.csv")
    event = _retrain(stack, ref, "trainer-kill")
    stack.wait_until(
        lambda: (_training(stack, event.correlation_id) or {}).get("status") == "running",
        120,
        "the training to start",
    )
    run_id = str((_training(stack, event.correlation_id) or {})["run_id"])
    victim: dict[str, object] = {}

    def helper_mid_trial() -> bool:
        helpers = [t for t in stack.active_tasks("trainer") if t["name"] == TRIALS_TASK]
        if not helpers:  # before any helper, the coordinator may still be creating the study
            return False
        try:
            study = _study(stack, run_id)
        except KeyError:
            return False
        running = {
            str(t.user_attrs.get("taken_by", "")).rsplit(":", 1)[-1]
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        }
        for task in helpers:
            if str(task["worker_pid"]) in running:
                victim.update(task)
                return True
        return False

    stack.wait_until(helper_mid_trial, 240, "a helper trainer to run a trial", poll=0.2)
    pid = int(str(victim["worker_pid"]))
    worker = stack.procs[str(victim["hostname"]).split("@")[0]]
    assert pid in children_of(worker.popen.pid)  # a pool process of that trainer
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    stack.wait_until(
        lambda: (_training(stack, event.correlation_id) or {}).get("status") in ("done", "failed"),
        600,
        "the training to finish after the kill",
    )
    recovered = time.monotonic() - killed
    training = _training(stack, event.correlation_id) or {}
    assert training["status"] == "done", training
    study = _study(stack, run_id)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(finished) == budget  # the full budget, not one more
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert failed, "the killed trial was never failed"
    retried = [
        t for t in finished if t.system_attrs.get("failed_trial") in {f.number for f in failed}
    ]
    assert retried, "the killed trial was not run again"
    version = str(training["model_version"])
    assert (
        stack.count(
            "SELECT count(*) FROM monitoring.model_promotions WHERE challenger_version = :v",
            v=version,
        )
        == 1
    )
    assert "signal 9" in worker.log.read_text(errors="replace")
    stack.wait_idle(300)
    assert worker.popen.poll() is None and {p.name for p in stack.workers()} <= stack.ping()
    by_process: dict[str, int] = {}
    for trial in finished:
        taker = str(trial.user_attrs.get("taken_by", "?"))
        by_process[taker] = by_process.get(taker, 0) + 1
    FIGURES["trainer killed mid-trial"] = (
        f"pool pid {pid} of {worker.name} killed in trial {sorted(f.number for f in failed)};"
        f" retried, and v{version} registered {recovered:.1f}s later with {len(finished)}"
        f"/{budget} trials finished across {len(by_process)} process(es)"
    )


# ---- the scorer's throughput with one and with two processes -----------------------------------
def _ensure_champion(stack: LocalStack, tmp_path: Path) -> None:
    """A promoted model to score with (the lifecycle's, or one trained here when run alone)."""
    promoted = "SELECT count(*) FROM monitoring.model_promotions WHERE decision = 'promoted'"
    if stack.count(promoted):
        return
    path = batch_csv(tmp_path, "scaling-train.csv", 6000, seed=1, target=True)
    event = _retrain(stack, _upload(stack, path, "training/scaling/champion.csv"), "champion")
    stack.wait_until(lambda: stack.count(promoted) >= 1, 400, f"a champion ({event.event_id})")
    stack.wait_idle(300)


def _warm_then_timed(stack: LocalStack, paths: list[Path], label: str) -> float:
    """An untimed burst of the files, then the timed one (seconds) under other keys."""
    for phase in ("warm", "timed"):
        folder = f"new_data/throughput/{label}-{phase}"
        refs = [_upload(stack, path, f"{folder}/{path.name}") for path in paths]
        elapsed = _burst(stack, refs, f"{label}-{phase}")
        stack.wait_idle(300)
    return elapsed


def _burst(stack: LocalStack, refs: list[ObjectRef], label: str) -> float:
    """DataValidated(new_data) straight to the scorer for every file; seconds until every file
    has its scoring run."""
    bus = CeleryBus(stack.celery)
    events = [
        DataValidated.start_chain(
            f"system-test-throughput-{label}-{ref.key}",
            object=ref,
            kind="new_data",
            quality_run_id=f"throughput-{label}",
            rows=BURST_ROWS,
        )
        for ref in refs
    ]
    started = time.monotonic()
    for event in events:
        bus.publish_to(event, SCORE_TASK)
    keys = [ref.key for ref in refs]
    stack.wait_until(
        lambda: (
            stack.count(
                "SELECT count(DISTINCT input_key) FROM monitoring.scoring_runs"
                " WHERE input_key = ANY(:k)",
                k=keys,
            )
            == len(keys)
        ),
        600,
        f"the {label} burst to be scored",
    )
    return time.monotonic() - started


def test_scorer_throughput_with_one_and_two_processes(stack: LocalStack, tmp_path: Path) -> None:
    """The same burst of files on one scorer process, then on two (each compose's
    `--concurrency 2`): files per second and the ratio, as figures (no timed assert). Each
    timed burst follows an untimed one on the same processes, so every pool process has
    loaded the champion and its kernels: a restarted worker's cold start is not throughput."""
    _ensure_champion(stack, tmp_path)
    stack.wait_idle(300)
    scorers = [p.name for p in stack.workers("scorer")]
    assert len(scorers) == 2
    paths = [
        batch_csv(tmp_path, f"throughput-{n}.csv", BURST_ROWS, seed=700 + n)
        for n in range(BURST_FILES)
    ]
    seconds: dict[int, float] = {}
    stack.stop_worker(scorers[1])  # a warm shutdown: it has nothing running
    try:
        seconds[1] = _warm_then_timed(stack, paths, "one")
    finally:
        stack.spawn_worker(scorers[1])
        stack.wait_for_workers()
    seconds[2] = _warm_then_timed(stack, paths, "two")

    rows = BURST_FILES * BURST_ROWS
    per_s = {n: rows / s for n, s in seconds.items()}
    ratio = per_s[2] / per_s[1]
    assert (
        stack.count(
            "SELECT count(*) FROM monitoring.scoring_runs"
            " WHERE input_key LIKE 'new_data/throughput/%'"
        )
        == 4 * BURST_FILES  # a warm-up and a timed burst on each setup
    )
    NUMBERS.update(
        scorer_rows_per_s_1=round(per_s[1], 1),
        scorer_rows_per_s_2=round(per_s[2], 1),
        scorer_throughput_ratio=round(ratio, 3),
    )
    FIGURES["scorer throughput 1 / 2 processes (rows/s)"] = (
        f"{per_s[1]:.0f} / {per_s[2]:.0f} = {ratio:.2f}x ({BURST_FILES} files x {BURST_ROWS}"
        f" rows; {seconds[1]:.1f}s / {seconds[2]:.1f}s; each process --concurrency 2 on"
        f" {os.cpu_count()} cores)"
    )
