"""One search over several trainers: an exact budget, a dead trainer's trial run again, and
helpers that take nothing once the budget is spent (real Postgres: the Optuna RDB storage)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import optuna
import pytest
from optuna.trial import TrialState

from churnops_common.bus.local_bus import LocalBus
from churnops_common.db.migrations import upgrade
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import DataValidated, ObjectRef, TrialsRequested
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_trainer import distributed, records
from churnops_trainer.search import Prepared, SearchConfig, join_study, open_study, prepare

pytestmark = pytest.mark.services
EXCLUDE = ("customer_id", "churned")
Land = Callable[..., ObjectRef]


@pytest.fixture
def settings(trainer_settings: Settings, postgres_url: str) -> Settings:
    return trainer_settings.model_copy(
        update={
            "monitoring_db_url": postgres_url,
            "trainer_trial_heartbeat_s": 1,
            "trainer_trial_grace_s": 3,
        }
    )


def _searcher(
    settings: Settings, study: str, budget: int, helper: int = 0
) -> tuple[SearchConfig, Prepared]:
    """One process's view of the study: its own storage connection, sampler and features."""
    base = SearchConfig(
        n_trials=budget,
        study_name=study,
        families=("linear", "lightgbm"),
        cv_folds=3,
        max_estimators=60,
        sampler_seed_offset=helper * distributed.SAMPLER_SEED_STEP,
    )
    storage = distributed.heartbeat_storage(settings.monitoring_url(), settings)
    config = distributed.distributed_config(base, storage)
    frame = generate(900, seed=3)
    return config, prepare(frame, frame["churned"], EXCLUDE, config)


def test_two_pullers_finish_exactly_the_budget(settings: Settings) -> None:
    name, budget = f"exact-{uuid.uuid4().hex[:8]}", 9
    config, prepared = _searcher(settings, name, budget)
    study = open_study(config, prepared)
    helper_config, helper_prepared = _searcher(settings, name, budget, helper=1)
    helper_study = join_study(helper_config, helper_prepared)
    assert helper_study is not None
    engine = Runtime.from_settings(settings, LocalBus({})).engine
    reserve = distributed.study_lock(engine, name)
    ran: dict[str, int] = {}

    def helper() -> None:
        ran["helper"] = distributed.pull_trials(
            helper_study, helper_prepared.search, budget, reserve=reserve, wait=False
        )

    thread = threading.Thread(target=helper)
    thread.start()
    ran["coordinator"] = distributed.pull_trials(
        study, prepared.search, budget, reserve=reserve, wait=True, poll_s=0.1
    )
    thread.join(120)

    now = distributed.tally(study)
    assert (now.finished, now.running, now.failed) == (budget, 0, 0)
    assert ran["coordinator"] + ran["helper"] == budget
    assert ran["helper"] >= 1 and ran["coordinator"] >= 1, ran
    # The plain configurations ran first, each once, whoever took them.
    enqueued = [t for t in study.trials if "fixed_params" in t.system_attrs]
    assert len(enqueued) == len(prepared.points[:budget])


def test_a_dead_trainers_trial_is_failed_and_run_again_with_its_parameters(
    settings: Settings,
) -> None:
    name, budget = f"dead-{uuid.uuid4().hex[:8]}", 4
    config, prepared = _searcher(settings, name, budget)
    study = open_study(config, prepared)
    # A trainer takes the first trial, beats once, and dies (never tells the study).
    dead = distributed.take_trial(study)
    storage = config.storage
    assert isinstance(storage, optuna.storages.RDBStorage)
    storage.record_heartbeat(
        storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(name), dead.number
        )
    )
    engine = Runtime.from_settings(settings, LocalBus({})).engine

    ran = distributed.pull_trials(
        study,
        prepared.search,
        budget,
        reserve=distributed.study_lock(engine, name),
        wait=True,
        poll_s=0.2,
    )

    trials = study.get_trials(deepcopy=False)
    now = distributed.tally(study)
    assert (now.finished, now.running, now.failed) == (budget, 0, 1)
    assert ran == budget  # three new ones and the dead one's retry
    [failed] = [t for t in trials if t.state == TrialState.FAIL]
    assert failed.number == dead.number
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    point = prepared.points[0]
    assert {k: retry.params[k] for k in point} == point


def test_a_helper_takes_nothing_once_the_budget_is_spent_or_the_run_ended(
    settings: Settings,
) -> None:
    runtime = Runtime.from_settings(settings, LocalBus({}))
    upgrade(runtime.engine)
    name, budget = f"spent-{uuid.uuid4().hex[:8]}", 2
    config, prepared = _searcher(settings, name, budget)
    study = open_study(config, prepared)
    run_id = records.start_run(runtime.engine, settings.mlflow_model_name, "manual", "c")
    request = TrialsRequested(
        study_name=name,
        run_id=run_id,
        # Never read: a helper with nothing to take does not fetch the rows.
        training=ObjectRef(bucket="models", key="searches/missing/training.parquet", etag="x"),
        target="churned",
        exclude=list(EXCLUDE),
        n_trials=budget,
        seed=config.seed,
        cv_max_rows=config.cv_max_rows,
        cv_folds=config.cv_folds,
        helper=1,
    )
    url = settings.monitoring_url()
    distributed.pull_trials(
        study,
        prepared.search,
        budget,
        reserve=distributed.study_lock(runtime.engine, name),
        wait=True,
    )
    assert distributed.help_search(runtime, request, url) == 0  # the budget is spent

    other = f"ended-{uuid.uuid4().hex[:8]}"
    open_study(*_searcher(settings, other, budget))
    records.finish_run(runtime.engine, run_id, "failed", detail="the coordinator gave up")
    assert (
        distributed.help_search(runtime, request.model_copy(update={"study_name": other}), url) == 0
    )
    assert (
        distributed.help_search(runtime, request.model_copy(update={"study_name": "gone"}), url)
        == 0
    )


def test_a_training_with_a_shared_study_runs_its_budget_and_cleans_its_staging(
    settings: Settings, land_table: Land
) -> None:
    """The whole trigger path with the study in Postgres and no other trainer: the coordinator
    runs every trial, the helper task it published finds nothing to take, staging is removed."""
    shared = settings.model_copy(update={"optuna_storage_url": settings.monitoring_url()})
    platform = EmbeddedPlatform(shared, services={"trainer"})
    runtime = platform.runtime
    upgrade(runtime.engine)
    ref = land_table(runtime, generate(1200, seed=2), "training/t.csv", "training")
    platform.publish(
        DataValidated.start_chain(
            ref.versioned_uri, object=ref, kind="training", quality_run_id="q", rows=1200
        )
    )
    platform.run()

    helpers = platform.events_of("TrialsRequested")
    assert len(helpers) == min(shared.trainer_search_helpers, shared.optuna_n_trials - 1)
    assert platform.events_of("ModelPromoted")
    [summary] = optuna.get_all_study_summaries(shared.monitoring_url())
    study = optuna.load_study(study_name=summary.study_name, storage=shared.monitoring_url())
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == len(study.trials) == shared.optuna_n_trials
    assert all(t.user_attrs.get("taken_by") for t in finished)
    bucket = shared.minio_models_bucket
    assert not list(
        runtime.store.list_objects(bucket, distributed.staging_prefix(summary.study_name))
    )


def test_processes_opening_the_storage_together_on_a_fresh_database_all_get_it(
    settings: Settings,
) -> None:
    """The first trainers on a new database create Optuna's tables at the same moment."""
    opened: list[object] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            opened.append(distributed.heartbeat_storage(settings.monitoring_url(), settings))
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(opened) == 4
