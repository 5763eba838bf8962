"""One hyperparameter search over every trainer replica (stack mode).

The trainer holding the training lock (the coordinator) creates the run's Optuna study in the
Optuna storage (Postgres), stages its training rows as Parquet in the models bucket, and
publishes TrialsRequested tasks on the trainer queue. Every replica that takes one, and the
coordinator itself, pulls trials from the study until its budget is spent; the coordinator then
waits for the last running trials and refits, gates and registers as before (`search.tune`).

- Same data everywhere: the coordinator searches on the staged Parquet too (it reads back the
  bytes it wrote), so every process builds identical preprocessing, encodings and folds from
  identical rows with the same seed.
- Exact budget: a trial is taken only while complete + pruned + running trials are fewer than
  the budget, counted and asked under a Postgres advisory lock per study; failed trials do not
  count.
- A trainer that dies mid-trial: its trial stops sending heartbeats; after the grace period any
  puller fails it (`fail_stale_trials`) and `RetryFailedTrialCallback` enqueues it again with
  the same parameters, which the next puller takes. The coordinator keeps pulling until the
  budget is finished, so the training completes with its full budget.
- Redelivered or late tasks run nothing extra: the study counts the budget, and a helper stops
  as soon as the training run is no longer `running`.
- The result of the best trial another process ran (its out-of-fold predictions) is kept in
  the models bucket, so the coordinator does not run that trial again for its calibration.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, ProgrammingError
from threadpoolctl import threadpool_limits

from churnops_common.db.engine import is_sqlite
from churnops_common.db.locks import advisory_lock, lock_id
from churnops_common.events import ObjectRef, TrialsRequested, stable_id
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_trainer import guard
from churnops_trainer.search import (
    Challenger,
    Search,
    SearchConfig,
    TrialResult,
    join_study,
    prepare,
    tune,
)

log = logging.getLogger(__name__)
POLL_S = 1.0  # how often a coordinator with nothing to take looks at the study again
SAMPLER_SEED_STEP = 7919  # helper n samples with seed + n * step: no two share a stream
TAKEN_BY = "taken_by"  # trial user attribute: host:pid of the process that ran it
SCHEMA_ATTEMPTS = 3
Reserve = Callable[[], AbstractContextManager[object]]


@dataclass(frozen=True)
class Tally:
    finished: int  # complete or pruned: what the budget counts
    running: int
    waiting: int  # enqueued (plain configurations, retries of dead trials)
    failed: int


def tally(study: optuna.Study) -> Tally:
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return Tally(
        finished=sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states),
        running=states.count(TrialState.RUNNING),
        waiting=states.count(TrialState.WAITING),
        failed=states.count(TrialState.FAIL),
    )


def heartbeat_storage(url: str, settings: Settings) -> optuna.storages.RDBStorage:
    """The Optuna RDB storage with heartbeats: a trial silent past the grace period is failed
    and enqueued again (same parameters) by whichever puller notices first.

    Opening it creates Optuna's tables when they are missing; two processes doing that at once
    on a fresh database collide in Postgres' catalog (one gets a unique violation or "already
    exists"), so the loser opens it again and finds the tables made.
    """
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            return _open_storage(url, settings)
        except (IntegrityError, ProgrammingError) as exc:
            if attempt == SCHEMA_ATTEMPTS:
                raise
            log.info("Optuna's tables were being created by another process (%s): again", exc)
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _open_storage(url: str, settings: Settings) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs={"pool_pre_ping": True},
            heartbeat_interval=settings.trainer_trial_heartbeat_s,
            grace_period=max(
                settings.trainer_trial_grace_s, 2 * settings.trainer_trial_heartbeat_s
            ),
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=settings.trainer_trial_retries
            ),
        )


def distributed_config(config: SearchConfig, storage: optuna.storages.BaseStorage) -> SearchConfig:
    """Several processes on one study: one thread each (two processes use two cores), the
    shared storage, and a sampler that counts running trials as taken."""
    return replace(config, n_jobs=1, storage=storage, constant_liar=True)


# ---- pulling trials ----------------------------------------------------------------------------
def pull_trials(
    study: optuna.Study,
    search: Search,
    budget: int,
    *,
    reserve: Reserve,
    wait: bool,
    keep_going: Callable[[], bool] = lambda: True,
    on_complete: Callable[[FrozenTrial], None] | None = None,
    poll_s: float = POLL_S,
) -> int:
    """Run trials of the study until `budget` of them are finished; returns how many ran here.

    `wait`: stay until the budget is finished (the coordinator: a trial of a dead trainer comes
    back after the grace period, and someone must run it); otherwise return as soon as there is
    nothing to take (a helper). An exception in the objective fails its trial and is raised.
    """
    ran = 0
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        with reserve():
            now = tally(study)
            if now.finished >= budget:
                return ran
            if now.failed > budget:
                raise RuntimeError(
                    f"{now.failed} trials of study {study.study_name} failed, more than its"
                    f" budget of {budget}: see the trainers' logs"
                )
            take = now.finished + now.running < budget and keep_going()
            trial = take_trial(study) if take else None
            if trial is not None:
                # Optuna never fails a running trial that has no heartbeat yet: beat before
                # anything else can die, so a taken trial always comes back if its taker dies.
                _beat(search.config.storage, study.study_name, trial.number)
        if trial is None:
            if not wait or not keep_going():
                return ran
            time.sleep(poll_s)
            continue
        trial.set_user_attr(TAKEN_BY, f"{socket.gethostname()}:{os.getpid()}")  # for people
        finished = run_trial(study, trial, search)
        ran += 1
        if on_complete is not None and finished.state == TrialState.COMPLETE:
            on_complete(finished)


def take_trial(study: optuna.Study) -> optuna.Trial:
    """The next trial: an enqueued one first (plain configurations, retries), else sampled."""
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for `optimize`; `run_trial` records them.
        warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
        return study.ask()


def run_trial(study: optuna.Study, trial: optuna.Trial, search: Search) -> FrozenTrial:
    """One trial with heartbeats, told to the study (pruned, complete, or failed and raised)."""
    with _heartbeats(search.config.storage, study.study_name, trial.number):
        try:
            value = search.objective(trial)
        except optuna.TrialPruned:
            return study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        except BaseException:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
    # Already finished when another puller failed it as stale (this process stalled past the
    # grace period): its retry runs again, this result is dropped.
    return study.tell(trial, value, skip_if_finished=True)


def _beating(storage: object) -> optuna.storages.RDBStorage | None:
    """The storage when it records heartbeats (an RDB storage with an interval), else None."""
    if isinstance(storage, optuna.storages.RDBStorage) and storage.heartbeat_interval:
        return storage
    return None


def _beat(storage: object, study_name: str, number: int) -> None:
    beating = _beating(storage)
    if beating is not None:
        study_id = beating.get_study_id_from_name(study_name)
        beating.record_heartbeat(beating.get_trial_id_from_study_id_trial_number(study_id, number))


@contextmanager
def _heartbeats(storage: object, study_name: str, number: int) -> Iterator[None]:
    """Record the trial's heartbeat every interval while it runs (model libraries release the
    GIL while they fit, so this thread keeps time)."""
    beating = _beating(storage)
    if beating is None:
        yield
        return
    interval = beating.heartbeat_interval
    trial_id = beating.get_trial_id_from_study_id_trial_number(
        beating.get_study_id_from_name(study_name), number
    )
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            try:
                beating.record_heartbeat(trial_id)
            except Exception as exc:  # a database blip: the next beat tries again
                log.warning("trial %d: heartbeat not recorded: %s", trial_id, exc)
            stop.wait(interval)

    thread = threading.Thread(target=beat, name=f"trial-{trial_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def study_lock(engine: Engine, study_name: str) -> Reserve:
    """Count-then-ask under one lock per study, so two pullers never take the last trial twice
    (SQLite, one process: nothing to lock)."""
    if is_sqlite(engine):
        return nullcontext

    def reserve() -> AbstractContextManager[object]:
        return advisory_lock(engine, lock_id("churnops-trials", study_name), wait=True)

    return reserve


# ---- what the coordinator and the helpers share -----------------------------------------------
def staging_prefix(study_name: str) -> str:
    return f"searches/{study_name}/"


def stage_training(
    runtime: Runtime, study_name: str, train: pd.DataFrame
) -> tuple[ObjectRef, pd.DataFrame]:
    """Write the training rows as Parquet for the helpers; returns its reference and the rows
    as read back from those bytes (what the coordinator searches on, like every helper)."""
    buffer = io.BytesIO()
    parquet_ready(train).to_parquet(buffer)
    data = buffer.getvalue()
    bucket = runtime.settings.minio_models_bucket
    runtime.store.ensure_buckets([bucket])
    key = staging_prefix(study_name) + "training.parquet"
    info = runtime.store.put_bytes(bucket, key, data, "application/vnd.apache.parquet")
    ref = ObjectRef(bucket=bucket, key=info.key, etag=info.etag, size=info.size)
    return ref, pd.read_parquet(io.BytesIO(data))


def read_staged(runtime: Runtime, ref: ObjectRef) -> pd.DataFrame:
    """The staged rows, pinned to the version the coordinator wrote."""
    return pd.read_parquet(io.BytesIO(runtime.store.get_bytes(ref.bucket, ref.key, etag=ref.etag)))


def parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as strings (a column mixing numbers and text would not convert)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].astype("string")
    out.columns = [str(c) for c in out.columns]
    return out


def _result_key(study_name: str, number: int) -> str:
    return staging_prefix(study_name) + f"results/{number}.npy"


def keep_if_best(runtime: Runtime, study: optuna.Study, search: Search) -> Callable[..., None]:
    """After a complete trial: when it is the best so far, keep its out-of-fold predictions
    (a few bytes per row) for the coordinator's calibration."""
    bucket = runtime.settings.minio_models_bucket

    def keep(trial: FrozenTrial) -> None:
        result = search.results.get(trial.number)
        if result is None or trial.value is None or trial.value < study.best_value:
            return
        buffer = io.BytesIO()
        np.save(buffer, result.out_of_fold, allow_pickle=False)
        key = _result_key(study.study_name, trial.number)
        runtime.store.put_bytes(bucket, key, buffer.getvalue(), "application/octet-stream")

    return keep


def kept_result(runtime: Runtime, study_name: str) -> Callable[[FrozenTrial], TrialResult | None]:
    """The result another process kept for a trial (None: not kept; it runs again)."""
    bucket = runtime.settings.minio_models_bucket

    def kept(trial: FrozenTrial) -> TrialResult | None:
        key = _result_key(study_name, trial.number)
        scores = trial.user_attrs.get("fold_pr_auc")
        iterations = trial.user_attrs.get("best_iteration")
        if scores is None or iterations is None or not runtime.store.exists(bucket, key):
            return None
        raw = runtime.store.get_bytes(bucket, key)
        out_of_fold = np.load(io.BytesIO(raw), allow_pickle=False)
        log.info("trial %d ran elsewhere: its kept out-of-fold predictions are used", trial.number)
        return TrialResult(out_of_fold, float(iterations), [float(s) for s in scores])

    return kept


# ---- the coordinator -------------------------------------------------------------------------
@dataclass
class Coordinator:
    """A `search.tune` runner: publish the helper tasks, then pull trials with them until the
    budget is finished."""

    runtime: Runtime
    requests: list[TrialsRequested]

    def __call__(self, study: optuna.Study, search: Search, budget: int) -> None:
        now = tally(study)
        if budget - now.finished > 1:  # one trial left: nobody to help
            for request in self.requests:
                self.runtime.bus.publish(request)
            log.info(
                "study %s: %d trial(s) to run, %d helper task(s) published",
                study.study_name,
                budget - now.finished,
                len(self.requests),
            )
        reserve = study_lock(self.runtime.engine, study.study_name)
        with threadpool_limits(1):
            ran = pull_trials(study, search, budget, reserve=reserve, wait=True)
        log.info("study %s: %d of %d trials ran in the coordinator", study.study_name, ran, budget)


def coordinate(
    runtime: Runtime,
    config: SearchConfig,
    train: pd.DataFrame,
    *,
    url: str,
    run_id: str,
    correlation_id: str,
    target: str,
    exclude: tuple[str, ...],
) -> Challenger:
    """`search.tune` with the trainer replicas: stage the rows, publish the helper tasks, pull
    trials with them, then refit and calibrate here."""
    shared = distributed_config(config, heartbeat_storage(url, runtime.settings))
    study_name = shared.study_name or ""
    ref, staged = stage_training(runtime, study_name, train)
    requests = helper_requests(
        runtime.settings,
        shared,
        run_id=run_id,
        correlation_id=correlation_id,
        training=ref,
        target=target,
        exclude=exclude,
    )
    challenger = tune(
        staged,
        staged[target],
        exclude,
        shared,
        runner=Coordinator(runtime, requests),
        kept=kept_result(runtime, study_name),
    )
    discard_staging(runtime, study_name)
    return challenger


def discard_staging(runtime: Runtime, study_name: str) -> None:
    """The staged rows and kept results go once the search is over (the version's own training
    table is saved with it). Best effort: what stays is only storage."""
    bucket = runtime.settings.minio_models_bucket
    try:
        for info in list(runtime.store.list_objects(bucket, staging_prefix(study_name))):
            runtime.store.delete(bucket, info.key)
    except Exception as exc:
        log.warning("staged search objects of %s not removed: %s", study_name, exc)


def helper_requests(
    settings: Settings,
    config: SearchConfig,
    *,
    run_id: str,
    correlation_id: str,
    training: ObjectRef,
    target: str,
    exclude: tuple[str, ...],
) -> list[TrialsRequested]:
    """The TrialsRequested tasks of one attempt (fresh ids: a retried training asks again)."""
    count = min(settings.trainer_search_helpers, max(config.n_trials - 1, 0))
    attempt = uuid.uuid4().hex
    return [
        TrialsRequested(
            event_id=stable_id("trials-requested", run_id, attempt, str(n)),
            correlation_id=correlation_id,
            causation_id=None,
            study_name=config.study_name or "",
            run_id=run_id,
            training=training,
            target=target,
            exclude=list(exclude),
            n_trials=config.n_trials,
            seed=config.seed,
            cv_max_rows=config.cv_max_rows,
            cv_folds=config.cv_folds,
            helper=n,
        )
        for n in range(1, count + 1)
    ]


# ---- a helper --------------------------------------------------------------------------------
def help_search(runtime: Runtime, request: TrialsRequested, url: str | None) -> int:
    """Pull trials of a running training's study; returns how many ran here."""
    if url is None:
        log.warning("trials of %s requested, but no Optuna storage is shared", request.study_name)
        return 0
    engine = runtime.engine
    storage = heartbeat_storage(url, runtime.settings)
    try:

        def running() -> bool:
            run = guard.find_run(engine, request.run_id)
            return run is not None and run.status == "running"

        if not running() or not _anything_to_take(request, storage):
            log.info("study %s: nothing to take", request.study_name)
            return 0
        train = read_staged(runtime, request.training)
        config = SearchConfig(
            n_trials=request.n_trials,
            seed=request.seed,
            n_jobs=1,
            storage=storage,
            study_name=request.study_name,
            sampler_seed_offset=request.helper * SAMPLER_SEED_STEP,
            constant_liar=True,
            cv_max_rows=request.cv_max_rows,
            cv_folds=request.cv_folds,
        )
        with threadpool_limits(1):
            prepared = prepare(train, train[request.target], tuple(request.exclude), config)
            study = join_study(config, prepared)
            if study is None:
                return 0
            ran = pull_trials(
                study,
                prepared.search,
                request.n_trials,
                reserve=study_lock(engine, request.study_name),
                wait=False,
                keep_going=running,
                on_complete=keep_if_best(runtime, study, prepared.search),
            )
        log.info("study %s: helper %d ran %d trial(s)", request.study_name, request.helper, ran)
        return ran
    finally:
        storage.engine.dispose()


def _anything_to_take(request: TrialsRequested, storage: optuna.storages.BaseStorage) -> bool:
    """Cheap, before reading any data: is there a study with trials left to take?"""
    try:
        study = optuna.load_study(study_name=request.study_name, storage=storage)
    except KeyError:
        return False
    now = tally(study)
    return now.finished + now.running < request.n_trials
