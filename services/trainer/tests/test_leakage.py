"""Leakage guard: holdout rows never reach fitting or early stopping."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnops_common.events import ObjectRef
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_trainer.data import assemble, split_holdout
from churnops_trainer.search import SearchConfig, tune

REF = ObjectRef(bucket="landing", key="training/t.csv", etag="e1")


def test_holdout_comes_from_the_newest_labelled_batch_and_shares_no_id() -> None:
    base = generate(1000, seed=1)
    older = generate(400, seed=2)
    newest = generate(500, seed=3)
    # A customer from the training set turns up again, relabelled, in the newest batch.
    newest.loc[0, "customer_id"] = base.loc[0, "customer_id"]
    batches = [
        (ObjectRef(bucket="landing", key="new_data/a.csv", etag="a"), older),
        (ObjectRef(bucket="landing", key="new_data/b.csv", etag="b"), newest),
    ]
    data = split_holdout(base, batches, REF, "churned", "customer_id", 0.4)

    held, trained = set(data.holdout["customer_id"]), set(data.train["customer_id"])
    assert not held & trained
    assert held <= set(newest["customer_id"])
    assert len(data.holdout) == 200
    assert abs(data.holdout["churned"].mean() - newest["churned"].mean()) < 0.02  # stratified
    assert len(data.train) + len(data.holdout) == 1000 + 400 + 500 - 1
    assert data.labelled_rows == 900
    assert data.data_objects == [
        REF.versioned_uri,
        "landing/new_data/a.csv@a",
        "landing/new_data/b.csv@b",
    ]


def test_without_labelled_batches_a_stratified_share_of_the_training_set_is_held_out() -> None:
    base = generate(1000, seed=5)
    data = split_holdout(base, [], REF, "churned", "customer_id", 0.4)
    assert len(data.holdout) == 200 and len(data.train) == 800
    assert not set(data.holdout["customer_id"]) & set(data.train["customer_id"])


def _memorable(rows: int, seed: int, key_low: float, labels_from_key: bool) -> pd.DataFrame:
    """Noise features; in the 'memorable' rows the label is a clean function of `key`."""
    rng = np.random.default_rng(seed)
    key = rng.uniform(key_low, key_low + 1000, rows)
    label = (key > key_low + 500).astype(int) if labels_from_key else rng.integers(0, 2, rows)
    return pd.DataFrame(
        {
            "customer_id": [f"S{seed}-{i}" for i in range(rows)],
            "key": key,
            "noise": rng.normal(size=rows),
            "churned": label,
        }
    )


def test_a_model_cannot_learn_what_only_the_holdout_teaches(
    trainer_settings: Settings, land_table: Callable[..., ObjectRef]
) -> None:
    """The newest batch's labels follow `key` (in a range no training row has). Had any holdout
    row reached fitting, the trees would split on it and score the holdout near-perfectly."""
    from churnops_common.bus.local_bus import LocalBus
    from churnops_common.db.migrations import upgrade

    runtime = Runtime.from_settings(trainer_settings, LocalBus({}))
    upgrade(runtime.engine)
    training = land_table(runtime, _memorable(1200, 1, 0.0, False), "training/t.csv", "training")
    # The newest batch is all "memorable"; 40% of it is the holdout, 60% joins training.
    # So fitting does see the key->label rule on those 60%: only its holdout rows must be unseen.
    # To make any leak visible, the batch's training part gets noise labels instead.
    batch = _memorable(1000, 2, 5000.0, True)
    land_table(runtime, batch, "new_data/b.csv", "new_data")
    data = assemble(runtime, training)
    in_training = data.train["customer_id"].isin(batch["customer_id"])
    rng = np.random.default_rng(9)
    data.train.loc[in_training, "churned"] = rng.integers(0, 2, int(in_training.sum()))

    challenger = tune(
        data.train,
        data.train["churned"],
        ("churned", "customer_id"),
        SearchConfig(n_trials=3, n_jobs=1),
    )

    holdout_ids = set(data.holdout["customer_id"])
    used = data.train.loc[challenger.fit_index.union(challenger.validation_index), "customer_id"]
    assert not holdout_ids & set(used)
    assert challenger.fit_index.intersection(challenger.validation_index).empty
    auc = roc_auc_score(
        data.holdout["churned"], challenger.pipeline.churn_probability(data.holdout)
    )
    assert auc < 0.7, f"holdout ROC-AUC {auc:.3f}: the model learned from holdout rows"

    # Control: the same search with the holdout leaked into training does learn the rule, so
    # the bound above is one a leak would break.
    leaked = pd.concat([data.train, data.holdout], ignore_index=True)
    cheat = tune(
        leaked, leaked["churned"], ("churned", "customer_id"), SearchConfig(n_trials=3, n_jobs=1)
    )
    leaked_auc = roc_auc_score(
        data.holdout["churned"], cheat.pipeline.churn_probability(data.holdout)
    )
    assert leaked_auc > 0.9
