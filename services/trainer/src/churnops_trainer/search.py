"""Optuna search over LightGBM, XGBoost and a logistic regression, then one refit and a
calibrator: the challenger.

The caller hands over training rows only (the holdout never reaches this module). Every trial is
scored on the same validation rows: below `cv_max_rows` training rows, the mean PR-AUC over
stratified k folds (a single split of a few thousand rows picks noise); above it, one stratified
split. Validation rows drive early stopping and pruning. The libraries' defaults and a shallow,
strongly regularized configuration are the first trials, so the search picks something else
only when it is better on the same folds. The final model is refitted on all training rows with
the tuned number of trees; its probabilities are calibrated on the out-of-fold predictions
(`calibration`), where the decision threshold is chosen too.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from churnops_common.ml.pipeline import ChurnPipeline, Family, LinearModel, TabularPreprocessor
from churnops_trainer.calibration import CalibrationReport, fit_calibrator
from churnops_trainer.encoding import target_encode
from churnops_trainer.metrics import Metrics, best_f1_threshold, evaluate, pr_auc
from churnops_trainer.splits import stratified_split

log = logging.getLogger(__name__)
FAMILIES: tuple[Family, ...] = ("lightgbm", "xgboost", "linear")
PREFIXES: dict[str, str] = {"lightgbm": "lgb_", "xgboost": "xgb_", "linear": "lin_"}
# How the model reads categorical columns (one column per input column in every case):
# `native`: the library's own category partitions; `onehot`: one-vs-rest splits (what one-hot
# columns give a tree); `target`: high-cardinality columns as out-of-fold target means.
CategoricalMode = Literal["native", "onehot", "target"]


@dataclass(frozen=True)
class SearchConfig:
    n_trials: int
    seed: int = 42
    n_jobs: int = 1  # one thread: small tables gain little, busy machines lose a lot
    validation_share: float = 0.2
    families: tuple[Family, ...] = FAMILIES
    # Optuna RDB URL or storage (with heartbeats when trainers share the study); None keeps the
    # study in memory
    storage: str | optuna.storages.BaseStorage | None = None
    study_name: str | None = None
    # Several processes sampling one study: each seeds its sampler apart (else their random
    # start-up trials coincide), and TPE counts running trials as bad ("constant liar") so two
    # processes do not sample the same spot.
    sampler_seed_offset: int = 0
    constant_liar: bool = False
    early_stopping_rounds: int = 50
    max_estimators: int = 2000
    cv_max_rows: int = 50_000  # below this many training rows, k-fold selection
    cv_folds: int = 5
    min_level_rows: int = 10  # rarer categorical levels are grouped into one
    high_cardinality: int = 16  # columns with more levels may be target-encoded


@dataclass
class Challenger:
    """The refitted pipeline and how it was found."""

    pipeline: ChurnPipeline
    study: optuna.Study
    family: Family
    params: dict[str, Any]
    n_estimators: int
    validation: Metrics  # out-of-fold, calibrated
    fit_index: pd.Index  # the first fold's fit rows
    validation_index: pd.Index  # the first fold's validation rows
    trials: int = 0
    pruned: int = 0
    folds: int = 1
    fold_scores: list[float] = field(default_factory=list)  # the chosen trial's, per fold
    calibration: CalibrationReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def calibration_method(self) -> str:
        """sigmoid, isotonic or none (the model's own probabilities)."""
        return self.calibration.method if self.calibration else "none"

    @property
    def fold_spread(self) -> float:
        """Standard deviation of the chosen trial's fold PR-AUCs (0 for a single split)."""
        return float(np.std(self.fold_scores)) if len(self.fold_scores) > 1 else 0.0


@dataclass
class _Fitted:
    model: Any
    best_iteration: int
    validation_proba: np.ndarray


@dataclass
class TrialResult:
    out_of_fold: np.ndarray  # NaN where a row was never a validation row
    best_iteration: float  # mean over folds
    fold_scores: list[float]


@dataclass(frozen=True)
class _Folds:
    """Positional (fit, validation) row numbers, the same for every trial."""

    splits: list[tuple[np.ndarray, np.ndarray]]

    @property
    def cross_validated(self) -> bool:
        return len(self.splits) > 1


def make_folds(y: pd.Series, config: SearchConfig) -> _Folds:
    """k stratified folds below `cv_max_rows` rows (when each fold gets both classes), else one
    stratified split."""
    n = len(y)
    counts = y.value_counts()
    if n < config.cv_max_rows and len(counts) == 2 and int(counts.min()) >= config.cv_folds:
        kfold = StratifiedKFold(config.cv_folds, shuffle=True, random_state=config.seed + 1)
        return _Folds(list(kfold.split(np.zeros(n), y.to_numpy())))
    positions = pd.Series(np.arange(n), index=y.index)
    rest, taken = stratified_split(
        positions.to_frame(), y, config.validation_share, config.seed + 1
    )
    return _Folds([(positions.loc[rest.index].to_numpy(), positions.loc[taken.index].to_numpy())])


def _positive_weight(y: pd.Series, balance: str) -> float:
    """Class imbalance: weight positives by none, sqrt(neg/pos) or neg/pos (searched)."""
    ratio = float((y == 0).sum()) / max(float((y == 1).sum()), 1.0)
    return {"none": 1.0, "sqrt": math.sqrt(ratio), "full": ratio}[balance]


def _lightgbm_params(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("lgb_learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("lgb_num_leaves", 2, 64, log=True),
        "min_child_samples": trial.suggest_int("lgb_min_child_samples", 5, 200, log=True),
        "subsample": trial.suggest_float("lgb_subsample", 0.5, 1.0),
        "subsample_freq": 1,
        "colsample_bytree": trial.suggest_float("lgb_colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("lgb_reg_lambda", 1e-3, 30.0, log=True),
        "reg_alpha": trial.suggest_float("lgb_reg_alpha", 1e-3, 10.0, log=True),
        "cat_smooth": trial.suggest_float("lgb_cat_smooth", 1.0, 50.0, log=True),
    }


def _linear_params(trial: optuna.Trial) -> dict[str, Any]:
    return {"c": trial.suggest_float("lin_c", 1e-3, 10.0, log=True)}


def _xgboost_params(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("xgb_learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("xgb_max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("xgb_min_child_weight", 0.5, 50.0, log=True),
        "subsample": trial.suggest_float("xgb_subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("xgb_colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("xgb_reg_lambda", 1e-3, 30.0, log=True),
        "reg_alpha": trial.suggest_float("xgb_reg_alpha", 1e-3, 10.0, log=True),
    }


# The first trials: each family's library defaults (at the search range's edge where a default
# is 0), a shallow, strongly regularized configuration and boosted stumps; balance "none" is
# the libraries' default.
_LIGHTGBM_DEFAULTS = {
    "lgb_learning_rate": 0.1,
    "lgb_num_leaves": 31,
    "lgb_min_child_samples": 20,
    "lgb_subsample": 1.0,
    "lgb_colsample_bytree": 1.0,
    "lgb_reg_lambda": 1e-3,
    "lgb_reg_alpha": 1e-3,
    "lgb_cat_smooth": 10.0,
}
_LIGHTGBM_SHALLOW = {
    "lgb_learning_rate": 0.05,
    "lgb_num_leaves": 4,
    "lgb_min_child_samples": 100,
    "lgb_subsample": 0.8,
    "lgb_colsample_bytree": 0.7,
    "lgb_reg_lambda": 10.0,
    "lgb_reg_alpha": 1e-3,
    "lgb_cat_smooth": 20.0,
}
# Stumps: an additive model (one feature per tree), the boosted cousin of a linear model.
_LIGHTGBM_ADDITIVE = {
    "lgb_learning_rate": 0.1,
    "lgb_num_leaves": 2,
    "lgb_min_child_samples": 50,
    "lgb_subsample": 0.8,
    "lgb_colsample_bytree": 1.0,
    "lgb_reg_lambda": 5.0,
    "lgb_reg_alpha": 1e-3,
    "lgb_cat_smooth": 10.0,
}
_XGBOOST_DEFAULTS = {
    "xgb_learning_rate": 0.3,
    "xgb_max_depth": 6,
    "xgb_min_child_weight": 1.0,
    "xgb_subsample": 1.0,
    "xgb_colsample_bytree": 1.0,
    "xgb_reg_lambda": 1.0,
    "xgb_reg_alpha": 1e-3,
}
_XGBOOST_SHALLOW = {
    "xgb_learning_rate": 0.05,
    "xgb_max_depth": 2,
    "xgb_min_child_weight": 10.0,
    "xgb_subsample": 0.8,
    "xgb_colsample_bytree": 0.7,
    "xgb_reg_lambda": 10.0,
    "xgb_reg_alpha": 1e-3,
}


def starting_points(
    families: tuple[Family, ...], modes: list[CategoricalMode]
) -> list[dict[str, Any]]:
    """The plain configurations every search tries first, in this order."""
    points: list[dict[str, Any]] = []

    def add(family: Family, params: dict[str, Any], mode: CategoricalMode) -> None:
        if family in families:
            point = {"family": family, **params, "balance": "none"}
            if len(modes) > 1:
                point["categorical"] = mode
            points.append(point)

    first_mode: CategoricalMode = "onehot" if "onehot" in modes else modes[0]
    add("lightgbm", _LIGHTGBM_DEFAULTS, first_mode)
    add("xgboost", _XGBOOST_DEFAULTS, first_mode)
    add("lightgbm", _LIGHTGBM_SHALLOW, first_mode)
    add("xgboost", _XGBOOST_SHALLOW, first_mode)
    add("lightgbm", _LIGHTGBM_ADDITIVE, first_mode)
    add("linear", {"lin_c": 1.0}, first_mode)
    for mode in modes:
        if mode != first_mode:
            add("lightgbm", _LIGHTGBM_DEFAULTS, mode)
    return points


def _categorical_params(mode: CategoricalMode, preprocessor: TabularPreprocessor) -> dict[str, Any]:
    """One-vs-rest splits for every categorical column the model reads as categories."""
    if mode == "native":
        return {}
    widest = max((len(v) for v in preprocessor.categorical.values()), default=1)
    return {"max_cat_to_onehot": widest + 1}


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
    if family == "linear":
        return LinearModel(c=params["c"], pos_weight=pos_weight)
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
    """One early-stopped fit; with `trial`, pruned per boosting round (single-split search)."""
    x_fit, y_fit, x_val, y_val = data
    if family == "linear":  # no rounds to stop early
        model = make_model(family, params, 1, pos_weight, config, False).fit(x_fit, y_fit)
        return _Fitted(model, 1, np.asarray(model.predict_proba(x_val)[:, 1]))
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
    trial: optuna.Trial, families: tuple[Family, ...], modes: list[CategoricalMode]
) -> tuple[Family, dict[str, Any], str, CategoricalMode]:
    family: Family = trial.suggest_categorical("family", list(families))  # type: ignore[assignment]
    suggest = {"lightgbm": _lightgbm_params, "xgboost": _xgboost_params, "linear": _linear_params}
    params = suggest[family](trial)
    balance = trial.suggest_categorical("balance", ["none", "sqrt", "full"])
    mode: CategoricalMode = modes[0]
    if len(modes) > 1:
        mode = trial.suggest_categorical("categorical", list(modes))  # type: ignore[assignment]
    return family, params, str(balance), mode


def _sampler_and_pruner(
    config: SearchConfig, folds: _Folds, enqueued: int
) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
    """What every process searching the study uses: neither is stored in the study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=config.seed + config.sampler_seed_offset,
            multivariate=True,
            group=True,
            constant_liar=config.constant_liar,
            n_startup_trials=enqueued + max(4, min(10, config.n_trials // 4)),
        )
    # The enqueued plain configurations are never pruned: they are the bar to beat. Cross-
    # validated trials report once per fold; a single split reports per boosting round.
    warmup = 1 if folds.cross_validated else 30
    pruner = optuna.pruners.MedianPruner(n_startup_trials=max(4, enqueued), n_warmup_steps=warmup)
    return sampler, pruner


def open_study(config: SearchConfig, prepared: Prepared) -> optuna.Study:
    """The training's study, created (its plain configurations enqueued) or loaded as stored."""
    sampler, pruner = _sampler_and_pruner(config, prepared.folds, len(prepared.points))
    study = optuna.create_study(
        direction="maximize",
        sampler=sampler,
        pruner=pruner,
        storage=config.storage,
        study_name=config.study_name,
        load_if_exists=True,
    )
    # A stored study of an earlier attempt keeps its finished trials: only the rest run (the
    # best one is refitted below if this process did not run it).
    if not finished_trials(study):
        for point in prepared.points[: config.n_trials]:
            study.enqueue_trial(point, skip_if_exists=True)
    return study


def join_study(config: SearchConfig, prepared: Prepared) -> optuna.Study | None:
    """The stored study another process created (None when it is gone), to pull trials from."""
    if config.storage is None:
        return None  # a study in memory is no one else's
    sampler, pruner = _sampler_and_pruner(config, prepared.folds, len(prepared.points))
    try:
        return optuna.load_study(
            study_name=config.study_name, storage=config.storage, sampler=sampler, pruner=pruner
        )
    except KeyError:
        return None


FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def finished_trials(study: optuna.Study) -> int:
    """Trials that count against the budget: complete or pruned (not failed ones)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


class Search:
    """The objective and what it needs: features per categorical mode, folds, results."""

    def __init__(
        self,
        frames: dict[CategoricalMode, pd.DataFrame],
        y: pd.Series,
        folds: _Folds,
        preprocessor: TabularPreprocessor,
        config: SearchConfig,
    ) -> None:
        self.frames, self.y, self.folds = frames, y, folds
        self.preprocessor, self.config = preprocessor, config
        self.modes: list[CategoricalMode] = list(frames)
        self.results: dict[int, TrialResult] = {}

    def params(
        self, family: Family, params: dict[str, Any], mode: CategoricalMode
    ) -> dict[str, Any]:
        if family == "linear":  # categories are one-hot whatever the mode
            return dict(params)
        return {**params, **_categorical_params(mode, self.preprocessor)}

    def run(
        self,
        family: Family,
        params: dict[str, Any],
        balance: str,
        mode: CategoricalMode,
        trial: optuna.Trial | None,
    ) -> TrialResult:
        features, y = self.frames[mode], self.y
        out_of_fold = np.full(len(y), np.nan)
        scores: list[float] = []
        iterations: list[int] = []
        model_params = self.params(family, params, mode)
        for step, (fit, val) in enumerate(self.folds.splits):
            data = (features.iloc[fit], y.iloc[fit], features.iloc[val], y.iloc[val])
            per_round = trial if not self.folds.cross_validated else None
            result = _fit_early_stopped(
                family,
                model_params,
                _positive_weight(data[1], balance),
                data,
                self.config,
                per_round,
            )
            out_of_fold[val] = result.validation_proba
            scores.append(pr_auc(data[3].to_numpy(), result.validation_proba))
            iterations.append(result.best_iteration)
            if trial is not None and self.folds.cross_validated:
                trial.report(float(np.mean(scores)), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        return TrialResult(out_of_fold, float(np.mean(iterations)), scores)

    def objective(self, trial: optuna.Trial) -> float:
        family, params, balance, mode = _suggest(trial, self.config.families, self.modes)
        result = self.run(family, params, balance, mode, trial)
        self.results[trial.number] = result
        trial.set_user_attr("best_iteration", result.best_iteration)
        trial.set_user_attr("fold_pr_auc", [round(s, 6) for s in result.fold_scores])
        return float(np.mean(result.fold_scores))


def categorical_modes(
    preprocessor: TabularPreprocessor, config: SearchConfig
) -> list[CategoricalMode]:
    """The categorical handlings worth searching for this table."""
    if not preprocessor.categorical:
        return ["native"]
    modes: list[CategoricalMode] = ["native", "onehot"]
    if high_cardinality(preprocessor, config):
        modes.append("target")
    return modes


def high_cardinality(preprocessor: TabularPreprocessor, config: SearchConfig) -> list[str]:
    return [c for c, v in preprocessor.categorical.items() if len(v) > config.high_cardinality]


@dataclass
class Prepared:
    """What every trial needs, built the same way by every process from the same rows."""

    search: Search
    preprocessor: TabularPreprocessor
    encoded: TabularPreprocessor  # with target encoding tables, when a mode needs them
    folds: _Folds
    modes: list[CategoricalMode]
    points: list[dict[str, Any]]


def prepare(
    train: pd.DataFrame, y: pd.Series, exclude: tuple[str, ...], config: SearchConfig
) -> Prepared:
    """Preprocessor, features per categorical mode, folds and the first configurations."""
    preprocessor = TabularPreprocessor.fit(
        train, exclude=exclude, min_level_rows=config.min_level_rows
    )
    if not preprocessor.input_columns:
        raise ValueError("no feature columns left after excluding id, target and dropped columns")
    y = y.astype(int)
    features = preprocessor.transform(train)
    folds = make_folds(y, config)
    modes = categorical_modes(preprocessor, config)
    frames: dict[CategoricalMode, pd.DataFrame] = dict.fromkeys(modes, features)
    encoded = preprocessor
    if "target" in modes:
        columns = high_cardinality(preprocessor, config)
        frames["target"], tables = target_encode(
            features, y, columns, preprocessor, config.cv_folds, config.seed
        )
        encoded = preprocessor.with_encoding(tables)
    search = Search(frames, y, folds, preprocessor, config)
    points = starting_points(config.families, modes)
    return Prepared(search, preprocessor, encoded, folds, modes, points)


# Runs trials of the study until it holds the budget's finished trials (config.n_trials).
TrialRunner = Callable[[optuna.Study, Search, int], None]
# The result of a trial another process ran (None: not kept; it is run again here).
ResultSource = Callable[[optuna.trial.FrozenTrial], TrialResult | None]


def optimize_here(study: optuna.Study, search: Search, budget: int) -> None:
    """Every remaining trial in this process (one process: embedded mode, `churnops train`)."""
    remaining = budget - finished_trials(study)
    if remaining > 0:
        study.optimize(search.objective, n_trials=remaining, gc_after_trial=False)


def tune(
    train: pd.DataFrame,
    y: pd.Series,
    exclude: tuple[str, ...],
    config: SearchConfig,
    runner: TrialRunner = optimize_here,
    kept: ResultSource | None = None,
) -> Challenger:
    """Search, refit the best configuration on every training row, calibrate."""
    y = y.astype(int)
    prepared = prepare(train, y, exclude, config)
    search, modes = prepared.search, prepared.modes
    study = open_study(config, prepared)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        runner(study, search, config.n_trials)
    best = study.best_trial
    family, params, balance, mode = _params_of(best.params, modes)
    result = (
        search.results.get(best.number)
        or (kept(best) if kept is not None else None)
        or search.run(family, params, balance, mode, None)
    )
    return _refit(
        train=search.frames[mode],
        y=y,
        preprocessor=prepared.encoded if mode == "target" else prepared.preprocessor,
        chosen=(family, search.params(family, params, mode), balance, mode),
        result=result,
        folds=prepared.folds,
        study=study,
        config=config,
        index=train.index,
    )


def _refit(
    *,
    train: pd.DataFrame,
    y: pd.Series,
    preprocessor: TabularPreprocessor,
    chosen: tuple[Family, dict[str, Any], str, CategoricalMode],
    result: TrialResult,
    folds: _Folds,
    study: optuna.Study,
    config: SearchConfig,
    index: pd.Index,
) -> Challenger:
    """The chosen configuration on every training row, calibrated on out-of-fold predictions."""
    family, params, balance, mode = chosen
    seen = ~np.isnan(result.out_of_fold)
    y_oof = y.to_numpy()[seen]
    calibrator, report = fit_calibrator(y_oof, result.out_of_fold[seen], config.seed)
    calibrated = (
        result.out_of_fold[seen] if calibrator is None else calibrator(result.out_of_fold[seen])
    )
    threshold = best_f1_threshold(y_oof, calibrated)
    validation = evaluate(y_oof, calibrated, threshold)
    # More rows in the refit than in an early-stopped fit: scale the tree count with them.
    fit_rows = float(np.mean([len(fit) for fit, _ in folds.splits]))
    n_estimators = max(1, round(result.best_iteration * len(train) / fit_rows))
    model = make_model(family, params, n_estimators, _positive_weight(y, balance), config, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = model.fit(train, y)
    pipeline = ChurnPipeline(
        preprocessor=preprocessor,
        model=model,
        family=family,
        threshold=threshold,
        calibrator=calibrator,
    )
    states = [t.state for t in study.trials]
    first_fit, first_val = folds.splits[0]
    return Challenger(
        pipeline=pipeline,
        study=study,
        family=family,
        params={**params, "balance": balance, "categorical": mode},
        n_estimators=n_estimators,
        validation=validation,
        fit_index=index[first_fit],
        validation_index=index[first_val],
        trials=len(states),
        pruned=sum(s == optuna.trial.TrialState.PRUNED for s in states),
        folds=len(folds.splits),
        fold_scores=result.fold_scores,
        calibration=report,
    )


def _params_of(
    raw: dict[str, Any], modes: list[CategoricalMode]
) -> tuple[Family, dict[str, Any], str, CategoricalMode]:
    family: Family = raw["family"]
    prefix = PREFIXES[family]
    params = {k.removeprefix(prefix): v for k, v in raw.items() if k.startswith(prefix)}
    if family == "lightgbm":
        params["subsample_freq"] = 1
    mode: CategoricalMode = raw.get("categorical", modes[0])
    return family, params, str(raw["balance"]), mode
