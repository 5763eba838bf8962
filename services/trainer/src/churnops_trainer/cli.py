"""`churnops train`: train, register and gate a model from local files, no services needed;
in stack mode the decision (ModelPromoted/ModelRejected) is published to the workers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnops_common.cli import (
    JsonFlag,
    ModelNameOption,
    UserError,
    console,
    contract_settings,
    emit,
)

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_HOLDOUT_SHARE = 0.2


def _read(path: Path, what: str) -> pd.DataFrame:
    from churnops_common.tabular import read_table

    if not path.is_file():
        raise UserError(f"{what} file {str(path)!r} does not exist")
    try:
        frame = read_table(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot read {what} file {path.name!r} as CSV or Parquet: {first}"
        ) from exc
    if frame.empty:
        raise UserError(f"{what} file {path.name!r} has no rows")
    return frame


def _check_columns(frame: pd.DataFrame, columns: list[str], what: str, option: str) -> None:
    from churnops_common.contract import columns_hint

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"{option} {', '.join(missing)} not in the {what} file;"
            f" {columns_hint(frame.columns, missing[0])}"
        )


def _with_target(frame: pd.DataFrame, target: str, what: str) -> pd.DataFrame:
    from churnops_trainer.target import TargetError, binary_target

    try:
        return frame.assign(**{target: binary_target(frame, target)})
    except TargetError as exc:
        raise UserError(f"{what} file: {exc}") from exc


def prepare(
    data: Path,
    target: str,
    id_column: str | None,
    holdout: Path | None,
    drop: list[str],
    seed: int = 42,
) -> Any:
    """TrainingData from local files: the holdout file exactly, or a stratified 20% split."""
    from churnops_trainer.data import TrainingData
    from churnops_trainer.splits import stratified_split

    frame = _with_target(_read(data, "--data"), target, "--data")
    _check_columns(frame, [c for c in [id_column, *drop] if c], "--data", "--id/--drop")
    if holdout is not None:
        held = _with_target(_read(holdout, "--holdout"), target, "--holdout")
        if id_column and id_column in held.columns and id_column in frame.columns:
            # The holdout stays exactly as given; its customers leave the training rows.
            frame = frame[~frame[id_column].astype(str).isin(set(held[id_column].astype(str)))]
        return TrainingData(
            train=frame.reset_index(drop=True),
            holdout=held.reset_index(drop=True),
            holdout_from=f"--holdout {holdout.name}",
            local_files=[f"file:{data.name}", f"file:{holdout.name}"],
        )
    train, held = stratified_split(frame, frame[target], DEFAULT_HOLDOUT_SHARE, seed)
    return TrainingData(
        train=train.reset_index(drop=True),
        holdout=held.reset_index(drop=True),
        holdout_from=f"{DEFAULT_HOLDOUT_SHARE:.0%} stratified split of --data",
        local_files=[f"file:{data.name}"],
    )


def train_command(
    data: Annotated[Path, typer.Option("--data", help="Training table, CSV or Parquet.")],
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="Target column (0/1, true/false, yes/no, churned/stayed). Default: the model's"
            " contract, else TARGET_COLUMN or a column named like an outcome.",
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id", help="Id column (never a feature). Default: the contract's, else ID_COLUMN."
        ),
    ] = None,
    name: ModelNameOption = None,
    holdout: Annotated[
        Path | None,
        typer.Option(
            "--holdout", help="Holdout table for the gate (default: a stratified 20% of --data)."
        ),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(
            "--drop", help="A column that is not a feature; one per flag: --drop A --drop B."
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option("--trials", min=1, help="Optuna trials (default: OPTUNA_N_TRIALS)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Validate --data as a landed training set (its contract and baseline), then tune
    LightGBM/XGBoost, register the model in MLflow and promote it if it beats the champion."""
    if not data.is_file():
        raise UserError(f"--data file {str(data)!r} does not exist")
    settings, contract = contract_settings(name)
    settings = _seeded(settings, contract, target, id_column)
    _check_named_columns(data, {"--target": target, "--id": id_column})
    verdict = _validated(settings, data)
    settings, contract = contract_settings(settings.mlflow_model_name)
    settings = settings.model_copy(update={"optuna_n_trials": trials or settings.optuna_n_trials})
    target_name, id_name = contract.target_column, contract.id_column
    prepared = prepare(data, target_name, id_name, holdout, list(drop or []))
    try:
        result, answer = _train(settings, prepared, target_name, id_name, tuple(drop or []))
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # one line, never a traceback
        raise UserError(f"training failed: {type(exc).__name__}: {exc}") from exc
    notified, notice = notify(settings, answer)
    output = {
        "holdout": {
            "roc_auc": round(result.holdout.roc_auc, 6),
            "pr_auc": round(result.holdout.pr_auc, 6),
            "log_loss": round(result.holdout.log_loss, 6),
            "brier": round(result.holdout.brier, 6),
            "ece": round(result.holdout.ece, 6),
            **{k: _round(v) for k, v in result.holdout_profit.model_dump().items()},
        },
        "calibration": {
            "method": result.calibration_method,
            "before": {
                "brier": round(result.holdout_uncalibrated.brier, 6),
                "ece": round(result.holdout_uncalibrated.ece, 6),
            },
            "after": {
                "brier": round(result.holdout.brier, 6),
                "ece": round(result.holdout.ece, 6),
            },
        },
        "model_name": settings.mlflow_model_name,
        "model_version": result.version,
        "promoted": result.promoted,
        "best_family": result.family,
        "contract": _contract_summary(contract),
        "baseline_version": _baseline_version(settings),
        "quality_run_id": verdict.quality_run_id,
        "warnings": list(verdict.warnings),
        "event": answer.event_type,
        "workers_notified": notified,
        "notice": notice,
    }
    reason = result.decision.reason
    emit(output, as_json, lambda r: _human(r, reason, len(prepared.train), len(prepared.holdout)))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _seeded(settings: Any, contract: Any, target: str | None, id_column: str | None) -> Any:
    """Flags override the settings' seeds; against an existing contract they must agree."""
    if contract is not None:
        for flag, given, fixed in (
            ("--target", target, contract.target_column),
            ("--id", id_column, contract.id_column),
        ):
            if given is not None and given != fixed:
                raise UserError(
                    f"model {settings.mlflow_model_name!r} has a data contract with {flag}"
                    f" {fixed!r}, not {given!r}: another dataset is another model; train it"
                    f" with --name NEW_NAME"
                )
    update = {k: v for k, v in (("target_column", target), ("id_column", id_column)) if v}
    return settings.model_copy(update=update) if update else settings


def _check_named_columns(data: Path, named: dict[str, str | None]) -> None:
    """A column named on the command line must be in the file: never guessed past."""
    from churnops_common.contract import columns_hint
    from churnops_common.tabular import columns_of

    try:
        header = columns_of(data)
    except Exception:
        return
    for flag, column in named.items():
        if column is not None and column not in header:
            raise UserError(
                f"{flag} {column!r} not in --data {data.name!r}; {columns_hint(header, column)}"
            )


def _validated(settings: Any, data: Path) -> Any:
    """Run --data through quality exactly as a landed training set: the same checks, the
    same first baseline (the contract), the same records. Rejected: one line, exit 2."""
    from churnops_common.embedded import EmbeddedPlatform
    from churnops_common.events import DataRejected

    platform = EmbeddedPlatform(settings, services={"quality"}, in_stack=True)
    # The first training set's verdict depends on the target and id it is read with: the
    # landed name carries them, so other flags are a fresh check, the same ones its record.
    seeds = f"{settings.mlflow_model_name}|{settings.target_column}|{settings.id_column}"
    tag = hashlib.sha256(seeds.encode()).hexdigest()[:8]
    landed = platform.drop(data, "training", name=f"{data.stem}-{tag}{data.suffix}")
    platform.run()
    verdict = platform.outcome_of(landed)
    if verdict is None:
        raise UserError(f"--data {data.name!r}: no verdict from quality (is it installed?)")
    if isinstance(verdict, DataRejected):
        raise UserError(f"--data {data.name!r} rejected: {verdict.reason}")
    return verdict


def _contract_summary(contract: Any) -> dict[str, Any]:
    return {
        "id": contract.fingerprint,
        "target": contract.target_column,
        "positive": contract.positive_label,
        "id_column": contract.id_column,
        "features": len(contract.features),
        "not_features": {c.name: c.role for c in contract.not_features},
    }


def _baseline_version(settings: Any) -> int | None:
    from churnops_common.contract import pointer_key
    from churnops_common.storage import object_store_from_settings

    store = object_store_from_settings(settings)
    key = pointer_key(settings.mlflow_model_name)
    if not store.exists(settings.minio_models_bucket, key):
        return None
    return int(json.loads(store.get_bytes(settings.minio_models_bucket, key))["version"])


def notify(settings: Any, answer: Any) -> tuple[bool, str]:
    """Tell the workers what the training decided, as the trainer worker would.

    Stack mode publishes the ModelPromoted/ModelRejected over Celery (the scorer hot-swaps,
    quality refreshes its baseline, the monitor records it). Embedded mode has no workers: each
    `churnops` process is its own platform, so nothing is published and the output says so.
    """
    what = f"{answer.event_type} {answer.event_id}"
    if not settings.is_stack:
        from churnops_common.embedded import EmbeddedPlatform

        platform = EmbeddedPlatform(settings)
        platform.publish(answer)
        platform.run()
        return False, f"embedded mode: {what} handled by this process's stages"
    from churnops_common.bus.celery_bus import CeleryBus
    from churnops_common.celery_app import make_celery

    app = make_celery("churnops-cli", settings)
    try:
        CeleryBus(app).publish(answer)
    except Exception as exc:  # the model is registered either way: report, do not crash
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return False, f"{what} NOT published ({type(exc).__name__}: {first})"
    finally:
        app.close()
    return True, f"published {what} to the workers"


def _train(
    settings: Any, prepared: Any, target: str, id_column: str | None, drop: tuple[str, ...]
) -> Any:
    """Train under the lock; returns the result and the event that answers it (unpublished)."""
    from churnops_common.bus.local_bus import LocalBus
    from churnops_common.db.migrations import upgrade
    from churnops_common.events import RetrainRequested
    from churnops_common.runtime import Runtime
    from churnops_trainer import records
    from churnops_trainer.outcome import announce
    from churnops_trainer.train_model import train_and_decide
    from churnops_trainer.training_lock import training_lock

    # The answer is published by `notify`, not through the runtime's bus.
    runtime = Runtime.from_settings(settings, LocalBus({}))
    upgrade(runtime.engine)
    # The chain's root: a manual retrain request (never published); the answer derives from it.
    trigger = RetrainRequested(reason="manual", detail="churnops train")
    correlation_id = trigger.correlation_id
    with training_lock(runtime.engine, settings, wait=False) as held:
        if not held:
            raise UserError("another training of this model is running; try again when it ends")
        run_id = records.start_run(
            runtime.engine,
            settings.mlflow_model_name,
            "manual",
            correlation_id,
            detail="churnops train",
        )
        try:
            trials = settings.optuna_n_trials
            with console.status(f"training: {trials} Optuna trials on {len(prepared.train)} rows"):
                result = train_and_decide(
                    runtime,
                    prepared,
                    trigger="manual",
                    correlation_id=correlation_id,
                    n_trials=trials,
                    target=target,
                    id_column=id_column,
                    drop=drop,
                )
        except BaseException as exc:
            records.finish_run(runtime.engine, run_id, "failed", detail=str(exc)[:2000])
            raise
        records.finish_done(runtime.engine, run_id, result, prepared.data_objects)
    answer = announce(
        trigger, settings.mlflow_model_name, result.version, result.decision, result.training_data
    )
    return result, answer


def _human(result: dict[str, Any], reason: str, train_rows: int, holdout_rows: int) -> None:
    h = result["holdout"]
    console.print(
        f"trained {result['best_family']} on {train_rows} rows; holdout ({holdout_rows}"
        f" rows): ROC-AUC {h['roc_auc']:.4f}  PR-AUC {h['pr_auc']:.4f}  "
        f"log loss {h['log_loss']:.4f}  Brier {h['brier']:.4f}  ECE {h['ece']:.4f}"
    )
    c = result["calibration"]
    console.print(
        f"calibration ({c['method']}): Brier {c['before']['brier']:.4f} -> "
        f"{c['after']['brier']:.4f}, ECE {c['before']['ece']:.4f} -> {c['after']['ece']:.4f}"
    )
    if h.get("empc") is not None:
        console.print(
            f"profit per customer (RETENTION_* economics): EMPC {h['empc']:.4f}, maximum"
            f" {h['mp']:.4f} contacting {h['contact_rate']:.1%} of them"
        )
    verdict = "promoted to champion" if result["promoted"] else "not promoted"
    console.print(
        f"model {result['model_name']!r} version {result['model_version']}: {verdict} ({reason})",
        markup=False,
    )
    contract = result["contract"]
    console.print(
        f"data contract {contract['id']}: target {contract['target']!r} (positive"
        f" {contract['positive']!r}), id {contract['id_column']!r}, {contract['features']}"
        f" features; baseline v{result['baseline_version']}",
        markup=False,
    )
    left_out = contract.get("not_features") or {}
    if left_out:
        console.print(
            "not features (by the contract's roles): "
            + ", ".join(f"{name!r} ({role.replace('_', ' ')})" for name, role in left_out.items()),
            markup=False,
        )
    console.print(result["notice"])


def register(app: typer.Typer) -> None:
    """Add this service's commands to the churnops CLI."""
    app.command("train")(train_command)
