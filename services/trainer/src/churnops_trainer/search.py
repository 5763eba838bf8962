"""Optuna search over LightGBM and XGBoost, then one refit: the challenger pipeline.

The caller hands over training rows only (the holdout never reaches this module). They are split
once more into fit rows and validation rows: validation rows drive early stopping, pruning and
the decision threshold; the final model is refitted on all training rows with the tuned number
of trees.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd

from churnops_common.ml.pipeline import ChurnPipeline, Family, TabularPreprocessor
from churnops_trainer.metrics import Metrics, best_f1_threshold, evaluate, pr_auc
from churnops_trainer.splits import stratified_split

log = logging.getLogger(__name__)
FAMILIES: tuple[Family, ...] = ("lightgbm", "xgboost")


@dataclass(frozen=True)
class SearchConfig:
    n_trials: int
    seed: int = 42
    n_jobs: int = 1  # one thread: small tables gain little, busy machines lose a lot
    validation_share: float = 0.2
    families: tuple[Family, ...] = FAMILIES
    storage: str | None = None  # Optuna RDB URL; None keeps the study in memory
    study_name: str | None = None
    early_stopping_rounds: int = 50
    max_estimators: int = 2000


@dataclass
class Challenger:
    """The refitted pipeline and how it was found."""

    pipeline: ChurnPipeline
    study: optuna.Study
    family: Family
    params: dict[str, Any]
    n_estimators: int
    validation: Metrics
    fit_index: pd.Index
    validation_index: pd.Index
    trials: int = 0
    pruned: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Fitted:
    model: Any
    best_iteration: int
    validation_proba: np.ndarray


def _positive_weight(y: pd.Series, balance: str) -> float:
    """Class imbalance: weight positives by none, sqrt(neg/pos) or neg/pos (searched)."""
    ratio = float((y == 0).sum()) / max(float((y == 1).sum()), 1.0)
    return {"none": 1.0, "sqrt": math.sqrt(ratio), "full": ratio}[balance]


def _lightgbm_params(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("lgb_learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("lgb_num_leaves", 4, 64, log=True),
        "min_child_samples": trial.suggest_int("lgb_min_child_samples", 5, 200, log=True),
        "subsample": trial.suggest_float("lgb_subsample", 0.5, 1.0),
        "subsample_freq": 1,
        "colsample_bytree": trial.suggest_float("lgb_colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("lgb_reg_lambda", 1e-3, 30.0, log=True),
        "reg_alpha": trial.suggest_float("lgb_reg_alpha", 1e-3, 10.0, log=True),
        "cat_smooth": trial.suggest_float("lgb_cat_smooth", 1.0, 50.0, log=True),
    }


def _xgboost_params(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("xgb_learning_rate", 0.01, 0.2, log=True),
        "max_depth": trial.suggest_int("xgb_max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("xgb_min_child_weight", 0.5, 50.0, log=True),
        "subsample": trial.suggest_float("xgb_subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("xgb_colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("xgb_reg_lambda", 1e-3, 30.0, log=True),
        "reg_alpha": trial.suggest_float("xgb_reg_alpha", 1e-3, 10.0, log=True),
    }


def make_model(
    family: Family,
    params: dict[str, Any],
    n_estimators: int,
    pos_weight: float,
    config: SearchConfig,
    early_stopping: bool,
    callbacks: list[Any] | None = None,
) -> Any:
    """An unfitted classifier; with early stopping it watches PR-AUC on the validation rows."""
    if family == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(
            n_estimators=n_estimators,
            scale_pos_weight=pos_weight,
            random_state=config.seed,
            n_jobs=config.n_jobs,
            verbose=-1,
            metric="average_precision",
            **params,
        )
    from xgboost import XGBClassifier

    return XGBClassifier(
        n_estimators=n_estimators,
        scale_pos_weight=pos_weight,
        random_state=config.seed,
        n_jobs=config.n_jobs,
        tree_method="hist",
        enable_categorical=True,
        eval_metric="aucpr",
        early_stopping_rounds=config.early_stopping_rounds if early_stopping else None,
        callbacks=callbacks,
        **params,
    )


def _fit_early_stopped(
    family: Family,
    params: dict[str, Any],
    pos_weight: float,
    data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
    config: SearchConfig,
    trial: optuna.Trial | None,
) -> _Fitted:
    x_fit, y_fit, x_val, y_val = data
    if family == "lightgbm":
        import lightgbm as lgb

        lgb_callbacks: list[Callable[..., Any]] = [
            lgb.early_stopping(config.early_stopping_rounds, first_metric_only=True, verbose=False)
        ]
        if trial is not None:
            from optuna_integration import LightGBMPruningCallback

            lgb_callbacks.append(LightGBMPruningCallback(trial, "average_precision"))
        model = make_model(family, params, config.max_estimators, pos_weight, config, True)
        model.fit(x_fit, y_fit, eval_X=(x_val,), eval_y=(y_val,), callbacks=lgb_callbacks)
        best = int(model.best_iteration_ or config.max_estimators)
    else:
        xgb_callbacks: list[Any] = []
        if trial is not None:
            from optuna_integration import XGBoostPruningCallback

            xgb_callbacks.append(XGBoostPruningCallback(trial, "validation_0-aucpr"))
        model = make_model(
            family, params, config.max_estimators, pos_weight, config, True, xgb_callbacks or None
        )
        model.fit(x_fit, y_fit, eval_set=[(x_val, y_val)], verbose=False)
        best = int(model.best_iteration) + 1
    return _Fitted(model, best, np.asarray(model.predict_proba(x_val)[:, 1]))


def _suggest(
    trial: optuna.Trial, families: tuple[Family, ...]
) -> tuple[Family, dict[str, Any], str]:
    family: Family = trial.suggest_categorical("family", list(families))  # type: ignore[assignment]
    params = _lightgbm_params(trial) if family == "lightgbm" else _xgboost_params(trial)
    balance = trial.suggest_categorical("balance", ["none", "sqrt", "full"])
    return family, params, str(balance)


def _new_study(config: SearchConfig) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=config.seed,
            multivariate=True,
            group=True,
            n_startup_trials=max(4, min(10, config.n_trials // 4)),
        )
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=30)
    return optuna.create_study(
        direction="maximize",
        sampler=sampler,
        pruner=pruner,
        storage=config.storage,
        study_name=config.study_name,
        load_if_exists=True,
    )


def tune(
    train: pd.DataFrame, y: pd.Series, exclude: tuple[str, ...], config: SearchConfig
) -> Challenger:
    """Search, then refit the best configuration on every training row."""
    preprocessor = TabularPreprocessor.fit(train, exclude=exclude)
    if not preprocessor.input_columns:
        raise ValueError("no feature columns left after excluding id, target and dropped columns")
    features = preprocessor.transform(train)
    fit_rows, val_rows = stratified_split(features, y, config.validation_share, config.seed + 1)
    data = (fit_rows, y.loc[fit_rows.index], val_rows, y.loc[val_rows.index])
    fitted: dict[int, _Fitted] = {}

    def objective(trial: optuna.Trial) -> float:
        family, params, balance = _suggest(trial, config.families)
        result = _fit_early_stopped(
            family, params, _positive_weight(data[1], balance), data, config, trial
        )
        fitted[trial.number] = result
        trial.set_user_attr("best_iteration", result.best_iteration)
        return pr_auc(data[3].to_numpy(), result.validation_proba)

    study = _new_study(config)
    # A stored study of an earlier attempt keeps its finished trials: only the rest run.
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = config.n_trials - len(study.get_trials(deepcopy=False, states=done))
    if remaining > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            study.optimize(objective, n_trials=remaining, gc_after_trial=False)
    best = study.best_trial
    family, params, balance = _params_of(best.params)
    result = fitted.get(best.number) or _fit_early_stopped(
        family, params, _positive_weight(data[1], balance), data, config, None
    )
    threshold = best_f1_threshold(data[3].to_numpy(), result.validation_proba)
    validation = evaluate(data[3].to_numpy(), result.validation_proba, threshold)
    # More rows in the refit than in the early-stopped fit: scale the tree count with them.
    n_estimators = max(1, round(result.best_iteration * len(train) / len(fit_rows)))
    model = make_model(family, params, n_estimators, _positive_weight(y, balance), config, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.fit(features, y)
    pipeline = ChurnPipeline(
        preprocessor=preprocessor, model=model, family=family, threshold=threshold
    )
    states = [t.state for t in study.trials]
    return Challenger(
        pipeline=pipeline,
        study=study,
        family=family,
        params={**params, "balance": balance},
        n_estimators=n_estimators,
        validation=validation,
        fit_index=fit_rows.index,
        validation_index=val_rows.index,
        trials=len(states),
        pruned=sum(s == optuna.trial.TrialState.PRUNED for s in states),
    )


def _params_of(raw: dict[str, Any]) -> tuple[Family, dict[str, Any], str]:
    family: Family = raw["family"]
    prefix = "lgb_" if family == "lightgbm" else "xgb_"
    params = {k.removeprefix(prefix): v for k, v in raw.items() if k.startswith(prefix)}
    if family == "lightgbm":
        params["subsample_freq"] = 1
    return family, params, str(raw["balance"])
