"""CLI commands of the monitor service, added to `churnops` through an entry point."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnops_common.cli import JsonFlag, UserError, console, emit

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
    from churnops_monitor.monitoring import run_monitoring

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
    else:
        console.print(f"champion (MLflow): unavailable - {mlflow['error']}")
    _print_rows("promotions", result["champion"]["promotions"])
    for title in (
        "live_performance",
        "scoring_runs",
        "rejected_files",
        "alerts",
        "monitoring_reports",
    ):
        _print_rows(title.replace("_", " "), result[title])


def register(app: typer.Typer) -> None:
    """Add this service's commands to the churnops CLI."""
    app.command("monitor")(monitor)
    app.command("status")(status)
