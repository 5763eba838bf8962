"""Per-queue task time limits: they make a finite shutdown grace period safe."""

from __future__ import annotations

import pytest

from churnops_common.celery_app import create_worker_app, time_limits_s
from churnops_common.routing import SERVICE_QUEUES, TRAINER
from churnops_common.settings import ConfigError, Settings, get_settings


def _settings(**values: int) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("queue", SERVICE_QUEUES)
def test_every_queue_has_a_soft_limit_below_its_hard_limit(queue: str) -> None:
    settings = _settings()
    soft, hard = time_limits_s(queue, settings)
    expected = settings.training_time_limit_s if queue == TRAINER else settings.task_time_limit_s
    assert hard == expected
    assert 0 < soft <= hard - 60
    assert hard < settings.task_visibility_timeout_s


def test_the_trainer_gets_its_own_longer_limit() -> None:
    settings = _settings(task_time_limit_s=600, training_time_limit_s=5400)
    assert time_limits_s("scorer", settings) == (540, 600)
    assert time_limits_s(TRAINER, settings) == (4860, 5400)


def test_a_limit_at_or_above_the_visibility_timeout_is_refused() -> None:
    settings = _settings(training_time_limit_s=3600, task_visibility_timeout_s=3600)
    with pytest.raises(ConfigError, match="TASK_VISIBILITY_TIMEOUT_S"):
        time_limits_s(TRAINER, settings)
    assert time_limits_s("quality", settings)[1] == settings.task_time_limit_s


def test_worker_apps_carry_their_queue_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASK_TIME_LIMIT_S", "900")
    monkeypatch.setenv("TRAINING_TIME_LIMIT_S", "7000")
    get_settings.cache_clear()
    scorer = create_worker_app("scorer", {})
    trainer = create_worker_app(TRAINER, {})
    assert (scorer.conf.task_soft_time_limit, scorer.conf.task_time_limit) == (810, 900)
    assert (trainer.conf.task_soft_time_limit, trainer.conf.task_time_limit) == (6300, 7000)
