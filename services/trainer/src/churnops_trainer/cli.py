"""`churnops train`: train, register and gate a model from local files, no services needed;
in stack mode the decision (ModelPromoted/ModelRejected) is published to the workers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from churnops_common.cli import JsonFlag, UserError, console, emit
from churnops_trainer.target import TargetError, binary_target

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
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(map(str, list(frame.columns)[:12]))
        raise UserError(
            f"{option} {', '.join(missing)} not in the {what} file; columns are: {shown}"
        )


def _with_target(frame: pd.DataFrame, target: str, what: str) -> pd.DataFrame:
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
        str, typer.Option("--target", help="Target column: 0/1, true/false, yes/no.")
    ],
    id_column: Annotated[
        str | None, typer.Option("--id", help="Id column (never a feature).")
    ] = None,
    holdout: Annotated[
        Path | None,
        typer.Option(
            "--holdout", help="Holdout table for the gate (default: a stratified 20% of --data)."
        ),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option("--drop", help="A column that is not a feature (repeatable)."),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option("--trials", min=1, help="Optuna trials (default: OPTUNA_N_TRIALS)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Tune LightGBM/XGBoost, register the model in MLflow, promote it if it beats the champion."""
    from churnops_common.settings import get_settings

    settings = get_settings()
    prepared = prepare(data, target, id_column, holdout, list(drop or []))
    try:
        trained = _train(
            settings,
            prepared,
            target,
            id_column,
            tuple(drop or []),
            trials or settings.optuna_n_trials,
        )
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # one line, never a traceback
        raise UserError(f"training failed: {type(exc).__name__}: {exc}") from exc
    result, answer = trained
    notified, notice = notify(settings, answer)
    output = {
        "holdout": {
            "roc_auc": round(result.holdout.roc_auc, 6),
            "pr_auc": round(result.holdout.pr_auc, 6),
            "log_loss": round(result.holdout.log_loss, 6),
            "brier": round(result.holdout.brier, 6),
            "ece": round(result.holdout.ece, 6),
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
        "model_version": result.version,
        "promoted": result.promoted,
        "best_family": result.family,
        "event": answer.event_type,
        "workers_notified": notified,
        "notice": notice,
    }
    reason = result.decision.reason
    emit(output, as_json, lambda r: _human(r, reason, len(prepared.train), len(prepared.holdout)))


def notify(settings: Any, answer: Any) -> tuple[bool, str]:
    """Tell the workers what the training decided, as the trainer worker would.

    Stack mode publishes the ModelPromoted/ModelRejected over Celery (the scorer hot-swaps,
    quality refreshes its baseline, the monitor records it). Embedded mode has no workers: each
    `churnops` process is its own platform, so nothing is published and the output says so.
    """
    what = f"{answer.event_type} {answer.event_id}"
    if not settings.is_stack:
        return False, f"embedded mode: no workers notified ({what} not published)"
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
    settings: Any,
    prepared: Any,
    target: str,
    id_column: str | None,
    drop: tuple[str, ...],
    trials: int,
) -> Any:
    """Train under the lock; returns the result and the event that answers it (unpublished)."""
    from churnops_common.bus.local_bus import LocalBus
    from churnops_common.db.migrations import upgrade
    from churnops_common.events import RetrainRequested
    from churnops_common.runtime import Runtime
    from churnops_trainer import guard
    from churnops_trainer.outcome import announce
    from churnops_trainer.service import train_and_decide

    # The answer is published by `notify`, not through the runtime's bus.
    runtime = Runtime.from_settings(settings, LocalBus({}))
    upgrade(runtime.engine)
    # The chain's root: a manual retrain request (never published); the answer derives from it.
    trigger = RetrainRequested(reason="manual", detail="churnops train")
    correlation_id = trigger.correlation_id
    with guard.training_lock(runtime.engine, settings, wait=False) as held:
        if not held:
            raise UserError("another training of this model is running; try again when it ends")
        run_id = guard.start_run(
            runtime.engine,
            settings.mlflow_model_name,
            "manual",
            correlation_id,
            detail="churnops train",
        )
        try:
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
            guard.finish_run(runtime.engine, run_id, "failed", detail=str(exc)[:2000])
            raise
        guard.finish_done(runtime.engine, run_id, result, prepared.data_objects)
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
    verdict = "promoted to champion" if result["promoted"] else "not promoted"
    console.print(f"model version {result['model_version']}: {verdict} ({reason})")
    console.print(result["notice"])


def register(app: typer.Typer) -> None:
    """Add this service's commands to the churnops CLI."""
    app.command("train")(train_command)
