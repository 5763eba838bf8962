"""One training, end to end: tune, score on the holdout, log, register, gate, publish objects.

Shared by the event handlers and `churnops train`; neither knows how the other got its data.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from churnops_common.contract import load_contract
from churnops_common.events import ObjectRef
from churnops_common.ml.economics import Economics
from churnops_common.ml.pipeline import ChurnPipeline, Family
from churnops_common.ml.profit_metrics import ProfitMetrics, profit_metrics
from churnops_common.ml.reference import reference_frame
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_trainer import distributed, gate, plots, registry
from churnops_trainer.data import TrainingData
from churnops_trainer.metrics import Metrics, evaluate
from churnops_trainer.outcome import pipeline_key, training_data_key
from churnops_trainer.search import Challenger, SearchConfig, tune

log = logging.getLogger(__name__)
CONTRIBUTION_SAMPLE_ROWS = 2000
MAX_TAG_CHARS = 5000


@dataclass(frozen=True)
class TrainingResult:
    version: str
    model_uri: str
    run_id: str
    decision: gate.Decision
    family: Family
    holdout: Metrics  # calibrated, as registered
    champion_holdout: Metrics | None
    holdout_uncalibrated: Metrics  # the same model before calibration
    holdout_profit: ProfitMetrics  # EMPC, MP, optimal threshold and contact rate
    calibration_method: str
    training_data: ObjectRef
    pipeline_object: ObjectRef
    training_rows: int
    holdout_rows: int

    @property
    def promoted(self) -> bool:
        return self.decision.promote


def optuna_storage(settings: Settings) -> str | None:
    """Stack mode keeps studies in Postgres (inspectable); embedded mode keeps them in memory."""
    if settings.optuna_storage_url:
        return settings.optuna_storage_url
    return settings.monitoring_url() if settings.is_stack else None


def train_and_decide(
    runtime: Runtime,
    data: TrainingData,
    *,
    trigger: str,
    correlation_id: str,
    n_trials: int,
    target: str,
    id_column: str | None,
    drop: tuple[str, ...] = (),
    run_id: str | None = None,
) -> TrainingResult:
    settings = runtime.settings
    contract = load_contract(runtime.store, settings)
    # The model learns only what the contract calls a feature: a column it calls free text, a
    # date or a row number would otherwise be learned without validation or drift watching it.
    not_features = [c.name for c in contract.not_features] if contract is not None else []
    exclude = tuple(dict.fromkeys(c for c in (target, id_column, *drop, *not_features) if c))
    config = SearchConfig(
        n_trials=n_trials,
        n_jobs=settings.trainer_n_jobs,
        storage=optuna_storage(settings),
        # One study per training run: a run that failed after its search (MLflow away) finds
        # its finished trials in the stored study and does not search again.
        study_name=f"{settings.mlflow_model_name}-{(run_id or uuid.uuid4().hex)[:36]}",
        cv_max_rows=settings.trainer_cv_max_rows,
        cv_folds=settings.trainer_cv_folds,
    )
    started = time.perf_counter()
    challenger = _search(
        runtime,
        data,
        config,
        target=target,
        exclude=exclude,
        run_id=run_id,
        correlation_id=correlation_id,
    )
    tuned_s = time.perf_counter() - started
    pipeline = challenger.pipeline
    pipeline.id_column, pipeline.target_column = id_column, target
    # One decision for the platform: the pipeline's own predict() contacts whom the profit cut
    # would at the campaign's constant CLV (its break-even probability), not a tuned F1 cut.
    economics = Economics.from_settings(settings)
    pipeline.threshold = economics.break_even()
    y_holdout = data.holdout[target].astype(int).to_numpy()
    proba = pipeline.churn_probability(data.holdout)
    holdout = evaluate(y_holdout, proba, pipeline.threshold)
    uncalibrated = evaluate(y_holdout, _uncalibrated(pipeline, data.holdout), pipeline.threshold)
    profit = profit_metrics(y_holdout, proba, economics)
    champion = registry.load_champion(settings, runtime.engine)
    champion_holdout, champion_profit = None, None
    if champion is not None:
        champion_proba = champion.pipeline.churn_probability(data.holdout)
        champion_holdout = evaluate(y_holdout, champion_proba, champion.pipeline.threshold)
        champion_profit = profit_metrics(y_holdout, champion_proba, economics)
    decision = gate.decide(
        holdout.pr_auc,
        champion.version if champion else None,
        champion_holdout.pr_auc if champion_holdout else None,
        settings.pr_auc_shadow_threshold,
        None
        if champion_holdout is None
        else gate.Calibration(holdout.ece, champion_holdout.ece, settings.gate_ece_tolerance),
        gate.profit_rule(profit, champion_profit) if settings.gate_require_empc else None,
    )
    pipeline.metadata.update(
        {
            "trained_at": datetime.now(UTC).isoformat(),
            "trigger": trigger,
            "holdout": holdout.model_dump(),
            "holdout_uncalibrated": uncalibrated.model_dump(),
            "holdout_profit": profit.model_dump(),
            "calibration": challenger.calibration_method,
            "params": challenger.params,
            "data_objects": data.data_objects,
        }
    )
    if contract is not None:  # the data contract travels with the version
        pipeline.metadata["contract"] = contract.model_dump(mode="json")
    tags = {
        **_version_tags(data, challenger, trigger, correlation_id),
        **_calibration_tags(holdout, uncalibrated),
        **_profit_tags(profit),
        **({"contract": contract.fingerprint} if contract is not None else {}),
    }
    logged = registry.log_training(
        settings,
        pipeline,
        data.train,
        _params(challenger, data, config),
        {
            **_metrics(holdout, champion_holdout, challenger, uncalibrated),
            **_profit_metrics(profit, champion_profit),
        },
        *_artifacts(challenger, data, holdout),
        tags,
        reference=reference_frame(
            data.holdout, pipeline.input_columns, id_column, y_holdout, proba
        ),
        trials=challenger.study.get_trials(deepcopy=False),
    )
    logged_s = time.perf_counter() - started - tuned_s
    # The decision goes on record first (with the version on the run's row); only then does
    # anything act on it, resumably (complete_promotion).
    gate.record(
        runtime.engine,
        settings.mlflow_model_name,
        logged.version,
        decision,
        trigger,
        correlation_id,
        logged.digest,
        run_id=run_id,
        data_objects=data.data_objects,
    )
    pipeline_ref, data_ref = complete_promotion(
        runtime,
        logged.version,
        decision,
        lambda: save_objects(runtime, pipeline, data, logged.version),
    )
    log.info(
        "trained v%s (%s, %d trials on %d rows: tuned in %.1f s, gated and logged in %.1f s,"
        " %.1f s in all): holdout PR-AUC %.4f, ECE %.4f (%.4f before calibration: %s),"
        " EMPC %s; %s",
        logged.version,
        challenger.family,
        challenger.trials,
        len(data.train),
        tuned_s,
        logged_s,
        time.perf_counter() - started,
        holdout.pr_auc,
        holdout.ece,
        uncalibrated.ece,
        challenger.calibration_method,
        profit.empc,
        decision.reason,
    )
    return TrainingResult(
        version=logged.version,
        model_uri=logged.model_uri,
        run_id=logged.run_id,
        decision=decision,
        family=challenger.family,
        holdout=holdout,
        champion_holdout=champion_holdout,
        holdout_uncalibrated=uncalibrated,
        holdout_profit=profit,
        calibration_method=challenger.calibration_method,
        training_data=data_ref,
        pipeline_object=pipeline_ref,
        training_rows=len(data.train),
        holdout_rows=len(data.holdout),
    )


def _search(
    runtime: Runtime,
    data: TrainingData,
    config: SearchConfig,
    *,
    target: str,
    exclude: tuple[str, ...],
    run_id: str | None,
    correlation_id: str,
) -> Challenger:
    """The search: shared with every trainer replica through a study in a shared database
    (`distributed`: stack mode), in this process otherwise (a study in memory or in SQLite:
    embedded mode; no training run: `churnops train`)."""
    url = config.storage if isinstance(config.storage, str) else None
    if (
        url is None
        or url.startswith("sqlite")
        or run_id is None
        or not runtime.settings.trainer_search_helpers
    ):
        return tune(data.train, data.train[target], exclude, config)
    return distributed.coordinate(
        runtime,
        config,
        data.train,
        url=url,
        run_id=run_id,
        correlation_id=correlation_id,
        target=target,
        exclude=exclude,
    )


def complete_promotion(
    runtime: Runtime,
    version: str,
    decision: gate.Decision,
    save_objects: Callable[[], tuple[ObjectRef, ObjectRef]],
) -> tuple[ObjectRef, ObjectRef]:
    """Act on a recorded decision: the version's objects, its aliases, its decision tags.

    Every step may run again (a redelivery after a failure part-way): writes and alias moves
    are idempotent, so the end state is the same however often it starts.
    """
    settings = runtime.settings
    pipeline_ref, data_ref = save_objects()
    registry.set_alias(settings, registry.CHALLENGER, version)
    if decision.promote:
        registry.set_alias(settings, registry.CHAMPION, version)
    registry.tag_version(
        settings,
        version,
        {
            "decision": "promoted" if decision.promote else "rejected",
            "decision_reason": decision.reason,
            "pipeline_object": pipeline_ref.uri,
            "training_data_object": data_ref.uri,
        },
    )
    return pipeline_ref, data_ref


def _version_tags(
    data: TrainingData, challenger: Challenger, trigger: str, correlation_id: str
) -> dict[str, str]:
    return {
        "data_objects": _fit(",".join(data.data_objects)),
        "training_rows": str(len(data.train)),
        "holdout_rows": str(len(data.holdout)),
        "labelled_rows": str(data.labelled_rows),
        "holdout_from": data.holdout_from,
        "trigger": trigger,
        "correlation_id": correlation_id,
        "family": challenger.family,
    }


def _calibration_tags(holdout: Metrics, uncalibrated: Metrics) -> dict[str, str]:
    """Holdout Brier and ECE, after and before calibration, readable from the version alone."""
    return {
        "holdout_brier": f"{holdout.brier:.6f}",
        "holdout_ece": f"{holdout.ece:.6f}",
        "uncalibrated_holdout_brier": f"{uncalibrated.brier:.6f}",
        "uncalibrated_holdout_ece": f"{uncalibrated.ece:.6f}",
    }


def _profit_tags(profit: ProfitMetrics) -> dict[str, str]:
    """Holdout EMPC, maximum profit and the profit-optimal contact rate, on the version."""
    figures = {
        "holdout_empc": profit.empc,
        "holdout_mp": profit.mp,
        "holdout_contact_rate": profit.contact_rate,
        "holdout_optimal_threshold": profit.optimal_threshold,
    }
    return {name: f"{value:.6f}" for name, value in figures.items() if value is not None}


def _profit_metrics(profit: ProfitMetrics, champion: ProfitMetrics | None) -> dict[str, float]:
    """The MLflow metrics of the campaign economics (RETENTION_*), per customer of the holdout."""
    values = {f"holdout_{k}": float(v) for k, v in profit.model_dump().items() if v is not None}
    if champion is not None and champion.empc is not None:
        values["champion_holdout_empc"] = champion.empc
    return values


def _fit(text: str, limit: int = MAX_TAG_CHARS) -> str:
    """MLflow caps tag and param values; a long list keeps its head and says so."""
    return text if len(text) <= limit else text[: limit - 20] + f"...(+{len(text) - limit + 20})"


def _params(challenger: Challenger, data: TrainingData, config: SearchConfig) -> dict[str, Any]:
    return {
        "family": challenger.family,
        **challenger.params,
        "n_estimators": challenger.n_estimators,
        "threshold": challenger.pipeline.threshold,
        "n_trials": config.n_trials,
        "trials_pruned": challenger.pruned,
        "seed": config.seed,
        "optuna_study": config.study_name or "",
        "training_rows": len(data.train),
        "holdout_rows": len(data.holdout),
        "cv_folds": challenger.folds,
        "fit_rows": len(challenger.fit_index),
        "validation_rows": len(challenger.validation_index),
        "calibration": challenger.calibration_method,
        "input_columns": _fit(",".join(challenger.pipeline.input_columns)),
    }


def _uncalibrated(pipeline: ChurnPipeline, frame: pd.DataFrame) -> Any:
    """The model's own probability, before the calibrator."""
    features = pipeline.preprocessor.transform(frame)
    return pipeline.model.predict_proba(features)[:, 1]


def _metrics(
    holdout: Metrics, champion: Metrics | None, challenger: Challenger, uncalibrated: Metrics
) -> dict[str, float]:
    # Each figure once: the holdout's under `holdout_` (the threshold and row count are
    # params), the folds' mean and spread only when there were folds to average.
    metrics = {
        f"holdout_{k}": float(v)
        for k, v in holdout.model_dump().items()
        if k not in ("threshold", "rows")
    }
    metrics.update(
        {
            "uncalibrated_holdout_brier": uncalibrated.brier,
            "uncalibrated_holdout_ece": uncalibrated.ece,
            "validation_pr_auc": challenger.validation.pr_auc,
            "validation_roc_auc": challenger.validation.roc_auc,
        }
    )
    if len(challenger.fold_scores) > 1:
        metrics["validation_fold_pr_auc_mean"] = float(np.mean(challenger.fold_scores))
        metrics["validation_fold_pr_auc_std"] = challenger.fold_spread
    if challenger.calibration is not None:
        metrics["oof_brier_before_calibration"] = challenger.calibration.brier_before
        metrics["oof_brier_after_calibration"] = challenger.calibration.brier_after
    if champion is not None:
        metrics.update(
            {
                "champion_holdout_pr_auc": champion.pr_auc,
                "champion_holdout_roc_auc": champion.roc_auc,
                "champion_holdout_ece": champion.ece,
            }
        )
    return metrics


def feature_importance(pipeline: ChurnPipeline) -> pd.Series:
    """Gain importance per input column (the model's own, mapped back from feature names)."""
    by_feature = dict(zip(pipeline.preprocessor.feature_names, pipeline.input_columns, strict=True))
    if pipeline.family == "linear":
        raw = pipeline.model.importance()
    elif pipeline.family == "lightgbm":
        gains = pipeline.model.booster_.feature_importance(importance_type="gain")
        raw = dict(zip(pipeline.model.booster_.feature_name(), gains, strict=True))
    else:
        raw = pipeline.model.get_booster().get_score(importance_type="total_gain")
    values = {column: float(raw.get(feature, 0.0)) for feature, column in by_feature.items()}
    return pd.Series(values, name="gain").sort_values(ascending=False)


def _artifacts(
    challenger: Challenger, data: TrainingData, holdout: Metrics
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    pipeline = challenger.pipeline
    sample = data.holdout.head(CONTRIBUTION_SAMPLE_ROWS)
    summary = plots.contribution_summary(pipeline.contributions(sample))
    importance = feature_importance(pipeline)
    proba = pipeline.churn_probability(data.holdout)
    y = data.holdout[pipeline.target_column or ""].astype(int).to_numpy()
    threshold = pipeline.threshold
    importances = plots.param_importances(challenger.study, challenger.family)
    figures = {
        "feature_importance": plots.importance_figure(importance, "Gain importance"),
        "contributions": plots.contributions_figure(summary),
        "roc": plots.roc_figure(y, proba),
        "precision_recall": plots.pr_figure(y, proba, threshold),
        "confusion_matrix": plots.confusion_figure(y, proba, threshold),
        "cumulative_gains_lift": plots.gains_figure(y, proba),
        "calibration": plots.calibration_figure(y, proba),
        "optuna_history": plots.history_figure(challenger.study),
        "optuna_param_importances": plots.param_importance_figure(
            importances,
            challenger.family,
            len(plots.family_trials(challenger.study, challenger.family)),
        ),
    }
    history = challenger.study.trials_dataframe(attrs=("number", "value", "state", "params"))
    tables = {
        "feature_importance": importance.to_frame(),
        "contributions_summary": summary,
        "cumulative_gains": plots.gains_table(y, proba),
        "optuna_param_importances": importances.to_frame(),
        "optuna_trials": history.set_index("number"),
    }
    return figures, tables


def save_objects(
    runtime: Runtime, pipeline: ChurnPipeline, data: TrainingData, version: str
) -> tuple[ObjectRef, ObjectRef]:
    """The .joblib mirror under models/pipelines/ and the training table as Parquet."""
    settings = runtime.settings
    bucket, name = settings.minio_models_bucket, settings.mlflow_model_name
    runtime.store.ensure_buckets([bucket])
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "pipeline.joblib"
        joblib.dump(pipeline, model_path)
        model_info = runtime.store.put_file(
            bucket,
            pipeline_key(name, version),
            model_path,
            "application/octet-stream",
        )
        table_path = Path(tmp) / "training.parquet"
        distributed.parquet_ready(data.train).to_parquet(table_path, index=False)
        table_info = runtime.store.put_file(
            bucket,
            training_data_key(name, version),
            table_path,
            "application/vnd.apache.parquet",
        )
    return (
        ObjectRef(bucket=bucket, key=model_info.key, etag=model_info.etag, size=model_info.size),
        ObjectRef(bucket=bucket, key=table_info.key, etag=table_info.etag, size=table_info.size),
    )
