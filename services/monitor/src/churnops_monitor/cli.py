"""CLI commands of the monitor service, added to `churnops` through an entry point."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnops_common.cli import (
    JsonFlag,
    ModelNameOption,
    UserError,
    console,
    emit,
    settings_for,
)

if TYPE_CHECKING:
    from churnops_common.runtime import Runtime


def _runtime() -> Runtime:
    """A runtime for direct use: no bus subscribers, tables and buckets made sure of."""
    from churnops_common.bus.local_bus import LocalBus
    from churnops_common.db.migrations import upgrade
    from churnops_common.runtime import Runtime
    from churnops_common.settings import get_settings

    settings = get_settings()
    runtime = Runtime.from_settings(settings, LocalBus({}))
    upgrade(runtime.engine)
    if not settings.is_stack:
        runtime.store.ensure_buckets(settings.buckets)
    return runtime


def parse_since(value: str | None) -> datetime | None:
    """A date (YYYY-MM-DD, midnight UTC) or an ISO timestamp (UTC when no offset is given)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), time())
        except ValueError:
            raise UserError(
                f"--since must be a date like 2026-11-01 or an ISO timestamp, not {value!r}"
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def monitor(
    since: Annotated[
        str | None,
        typer.Option(
            help="Cover batches scored since this date (default: the last MONITOR_WINDOW_DAYS)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Build the drift/performance report now (Evidently HTML, MLflow run, database row)."""
    from churnops_common.events import stable_id
    from churnops_monitor.monitoring_report import run_monitoring

    start = parse_since(since)
    now = datetime.now(UTC)
    if start is not None and start > now:
        raise UserError(f"--since {since} is in the future")
    report_id = stable_id("monitor-cli", now.isoformat())
    result = run_monitoring(
        _runtime(), report_id=report_id, correlation_id=report_id, since=start, now=now
    )
    emit(result.model_dump(mode="json"), as_json, _print_report)


def _print_report(result: dict[str, Any]) -> None:
    if result["status"] == "skipped":
        console.print(f"monitoring report skipped: {result['reason']}")
        return
    console.print(
        f"monitoring report {result['report_id'][:12]}: {result['scoring_runs']}"
        f" batch(es), {result['current_rows']} rows, {result['labelled_rows']} labelled"
    )
    console.print(f"reference: {result['reference_source']} ({result['reference_uri']})")
    for key in (
        "data_drift.DriftedColumnsCount.share",
        "prediction_drift.ValueDrift.churn_probability",
        "performance.roc_auc",
        "performance.pr_auc",
    ):
        if key in result["metrics"]:
            console.print(f"  {key}: {result['metrics'][key]:.4f}")
    for uri in result["report_uris"]:
        console.print(f"  {uri}")


def status(as_json: JsonFlag = False) -> None:
    """The champion and its metrics, recent scoring runs, rejected files and alerts."""
    from churnops_monitor.status import gather_status

    emit(gather_status(_runtime()), as_json, _print_status)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not rows:
        console.print(f"{title}: none")
        return
    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    console.print(table)


def _print_status(result: dict[str, Any]) -> None:
    mlflow = result["champion"]["mlflow"]
    if mlflow["reachable"]:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(mlflow["metrics"].items()))
        console.print(f"champion: {mlflow['model_name']} v{mlflow['version']} ({metrics})")
        profit = mlflow.get("profit") or {}
        if profit.get("empc") is not None:
            console.print(
                f"holdout profit per customer: EMPC {profit['empc']:.4f}, maximum"
                f" {profit['mp']:.4f} contacting {profit['contact_rate']:.1%}"
            )
    else:
        console.print(f"champion (MLflow): unavailable - {mlflow['error']}")
    _print_rows("promotions", result["champion"]["promotions"])
    for title in (
        "live_performance",
        "estimated_performance",
        "scoring_runs",
        "retention_campaigns",
        "realized_profit",
        "rejected_files",
        "alerts",
        "monitoring_reports",
    ):
        _print_rows(title.replace("_", " "), result[title])


def estimate(
    predictions: Annotated[
        Path, typer.Argument(dir_okay=False, help="A predictions file (Parquet or CSV).")
    ],
    reference: Annotated[
        Path | None,
        typer.Option(
            help="A reference set: churn_probability and label columns (default: the"
            " reference set of the model version that scored the file, else the champion's)."
        ),
    ] = None,
    name: ModelNameOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Expected ROC-AUC, PR-AUC, precision, recall, precision@K and churners of a scored file,
    before its labels arrive, each with its 95% band."""
    import numpy as np

    from churnops_common.tabular import read_frame
    from churnops_monitor.estimates import cut_threshold
    from churnops_monitor.estimation import EstimationError, estimate_batch, fit_estimator

    if not predictions.is_file():
        raise UserError(f"{predictions}: no such file")
    settings = settings_for(name)
    frame = read_frame(predictions, columns=["churn_probability", "model_version"])
    if "churn_probability" not in frame:
        raise UserError(f"{predictions.name} has no churn_probability column: score it first")
    probability = frame["churn_probability"].to_numpy(dtype=np.float64)
    source, (ref_p, ref_y) = _reference(reference, settings, frame)
    top_k = max(1, int(len(probability) * settings.monitor_top_k_share))
    try:
        fitted = fit_estimator(ref_p, ref_y)
        threshold = cut_threshold(probability, settings)
        estimates = estimate_batch(fitted, probability, threshold, top_k)
    except EstimationError as exc:
        raise UserError(str(exc)) from None
    result: dict[str, Any] = {k: _number(v.value) for k, v in estimates.items()}
    result["bands"] = {k: [_number(v.lower), _number(v.upper)] for k, v in estimates.items()}
    result.update(
        rows=len(probability),
        threshold=threshold,
        top_k=top_k,
        reference=source,
        reference_roc_auc=fitted.reference_roc_auc,
        reference_pr_auc=fitted.reference_pr_auc,
    )
    emit(result, as_json, _print_estimate)


def _number(value: float) -> float | None:
    return round(value, 6) if value == value else None  # NaN: nothing to estimate from


def _reference(path: Path | None, settings: Any, frame: Any) -> tuple[str, tuple[Any, Any]]:
    """(where it came from, (probabilities, labels)) of the reference set."""
    from churnops_common.tabular import read_frame

    if path is not None:
        if not path.is_file():
            raise UserError(f"--reference {path}: no such file")
        ref = read_frame(path)
        missing = {"churn_probability", "label"} - set(ref.columns)
        if missing:
            raise UserError(f"--reference {path.name} lacks column(s) {sorted(missing)}")
        return str(path), (ref["churn_probability"].to_numpy(), ref["label"].to_numpy())
    from churnops_common.ml.reference import LABEL, PROBABILITY, NoReferenceSet
    from churnops_common.ml.reference import load_reference_set as load

    versions = frame["model_version"].dropna().unique() if "model_version" in frame else []
    version = str(versions[0]) if len(versions) == 1 else _champion(settings)
    try:
        ref = load(settings, version)
    except NoReferenceSet as exc:
        raise UserError(f"{exc}; pass --reference FILE") from None
    source = f"{settings.mlflow_model_name} v{version} reference set"
    return source, (ref[PROBABILITY].to_numpy(), ref[LABEL].to_numpy())


def _champion(settings: Any) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from churnops_common.mlflow_setup import configure_mlflow

    client = MlflowClient(tracking_uri=configure_mlflow(settings))
    try:
        return str(
            client.get_model_version_by_alias(settings.mlflow_model_name, "champion").version
        )
    except MlflowException:
        raise UserError(
            f"model {settings.mlflow_model_name!r} has no champion: pass --reference FILE"
        ) from None


def _print_estimate(result: dict[str, Any]) -> None:
    console.print(
        f"label-free estimates for {result['rows']:,} rows (reference: {result['reference']}):",
        markup=False,
    )
    for metric in ("roc_auc", "pr_auc", "precision", "recall", "precision_at_k"):
        lower, upper = result["bands"][metric]
        value = result[metric]
        shown = "n/a" if value is None else f"{value:.3f} ({lower:.3f} to {upper:.3f})"
        console.print(f"  {metric:<16s} {shown}", markup=False)
    lower, upper = result["bands"]["expected_churners"]
    console.print(
        f"  expected churners {result['expected_churners']:.0f} ({lower:.0f} to {upper:.0f})",
        markup=False,
    )


def evaluate(
    predictions: Annotated[
        Path, typer.Argument(dir_okay=False, help="A predictions file (Parquet or CSV).")
    ],
    labels: Annotated[
        Path,
        typer.Option(dir_okay=False, help="The known outcomes: the id and target columns."),
    ],
    name: ModelNameOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Score a scored file against its outcomes: ROC-AUC, PR-AUC, Brier, ECE, EMPC, maximum
    profit, optimal contact rate, and the realized profit of the profit cut and of the plain
    policies (top 10% by probability, probability >= 0.5), under the RETENTION_* economics."""
    from churnops_common.cli import contract_settings
    from churnops_monitor.evaluation import EvaluationError, evaluation, outcomes

    settings, _ = contract_settings(name)  # the model's contract names ids and targets
    try:
        result = evaluation(outcomes(predictions, labels, settings), settings)
    except EvaluationError as exc:
        raise UserError(str(exc)) from None
    emit(result, as_json, _print_evaluation)


def _print_evaluation(result: dict[str, Any]) -> None:
    def shown(value: float | None, form: str = ".4f") -> str:
        return "n/a" if value is None else format(value, form)

    console.print(f"{result['rows']:,} customers with outcomes, {result['churners']:,} churned")
    console.print(
        f"  ROC-AUC {shown(result['roc_auc'])}  PR-AUC {shown(result['pr_auc'])}"
        f"  Brier {shown(result['brier'])}  ECE {shown(result['ece'])}"
    )
    console.print(
        f"  EMPC {shown(result['empc'])} per customer, maximum profit {shown(result['mp'])}"
        f" contacting {shown(result['contact_rate'], '.1%')}"
    )
    for label, profit, contacted in (
        ("profit cut", "profit", "contacted"),
        ("top 10% by probability", "profit_top10", "contacted_top10"),
        ("probability >= 0.5", "profit_p50", "contacted_p50"),
    ):
        console.print(
            f"  realized profit, {label}: {result[profit]:,.2f} ({result[contacted]:,} contacted)"
        )


def register(app: typer.Typer) -> None:
    """Add this service's commands to the churnops CLI."""
    app.command("monitor")(monitor)
    app.command("status")(status)
    app.command("estimate")(estimate)
    app.command("evaluate")(evaluate)
