"""The Optuna search: seeded, and kept in Postgres where it can be inspected."""

from __future__ import annotations

import optuna
import pytest

from churnops_common.synthetic import generate
from churnops_trainer.search import SearchConfig, tune


def test_the_search_is_seeded() -> None:
    train = generate(800, seed=3)
    runs = [
        tune(train, train["churned"], ("churned", "customer_id"), SearchConfig(n_trials=3, seed=7))
        for _ in range(2)
    ]
    assert runs[0].params == runs[1].params
    assert runs[0].validation == runs[1].validation
    assert runs[0].trials == 3


@pytest.mark.services
def test_the_study_is_stored_in_postgres(postgres_url: str) -> None:
    train = generate(800, seed=3)
    challenger = tune(
        train,
        train["churned"],
        ("churned", "customer_id"),
        SearchConfig(n_trials=3, storage=postgres_url, study_name="churn-test"),
    )
    stored = optuna.load_study(study_name="churn-test", storage=postgres_url)
    assert len(stored.trials) == 3
    assert stored.best_trial.params["family"] == challenger.family
    assert stored.best_trial.user_attrs["best_iteration"] >= 1
