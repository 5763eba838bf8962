"""CLI commands of the monitor service, added to `churnops` through an entry point."""

from __future__ import annotations

import re
from collections.abc import Callable
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
    """The report in sentences: what it covered, what it found, where to open it."""
    from churnops_common.settings import get_settings
    from churnops_common.storage.factory import where_to_look

    if result["status"] == "skipped":
        console.print(f"No monitoring report: {result['reason']}.", highlight=False)
        return
    metrics = result["metrics"]
    console.print(
        f"Monitoring report over {result['scoring_runs']} scored batch(es) since"
        f" {_local(result['window_start'])}: {result['current_rows']:,} rows,"
        f" {result['labelled_rows']:,} of them labelled.",
        highlight=False,
    )
    drifted = metrics.get("data_drift.DriftedColumnsCount.count")
    share = metrics.get("data_drift.DriftedColumnsCount.share")
    if drifted is not None:
        console.print(
            f"Drift: {drifted:.0f} column(s) drifted"
            + (f" ({share:.0%} of those compared)." if share is not None else "."),
            highlight=False,
        )
    performance = [
        f"{label} {metrics[key]:.3f}"
        for key, label in (("performance.roc_auc", "ROC-AUC"), ("performance.pr_auc", "PR-AUC"))
        if key in metrics
    ]
    if performance:
        console.print(
            f"Performance on the labelled rows: {', '.join(performance)}.", highlight=False
        )
    if result.get("reference_source"):
        console.print(f"Compared with: {result['reference_source']}.", highlight=False)
    settings = get_settings()
    uris = sorted(result["report_uris"], key=lambda u: not u.endswith("/index.html"))
    if uris:
        others = ", ".join(u.rsplit("/", 1)[-1] for u in uris[1:])
        console.print(
            f"Open {where_to_look(settings, uris[0])}"
            + (f" (beside it: {others})." if others else "."),
            highlight=False,
        )


def _local(moment: Any) -> str:
    """A timestamp (ISO text or datetime) in the local time zone, to the minute."""
    if moment is None or moment == "":
        return ""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return f"{when.astimezone():%Y-%m-%d %H:%M}"


def status(as_json: JsonFlag = False) -> None:
    """The champion and its metrics, recent scoring runs, rejected files and alerts."""
    from churnops_monitor.status import gather_status

    emit(gather_status(_runtime()), as_json, _print_status)


def _file(value: Any) -> str:
    return str(value).rsplit("/", 1)[-1]


def _short(value: Any, limit: int = 60) -> str:
    text = " ".join(str(value).split())
    text = re.sub(r"^:[a-z_]+:\s*", "", text)  # a Slack emoji code leading an alert message
    text = re.sub(r"s3://\S*/", "", text)  # an object by its file name: short, and any mode
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _band(value: Any) -> str:
    return str(value).replace("-", " to ")


def _money(value: Any) -> str:
    return f"{float(value):,.2f}"


# Per section of `status`: (column, header, how to show it) for people; `--json` keeps every
# column as stored.
Show = Callable[[Any], str]
STATUS_COLUMNS: dict[str, list[tuple[str, str, Show | None]]] = {
    "promotions": [
        ("decided_at", "when", None),
        ("challenger_version", "challenger", None),
        ("challenger_pr_auc", "PR-AUC", None),
        ("champion_version", "champion", None),
        ("champion_pr_auc", "its PR-AUC", None),
        ("decision", "decision", None),
    ],
    "live_performance": [
        ("computed_at", "when", None),
        ("model_version", "version", None),
        ("source_key", "labels from", _file),
        ("rows", "rows", None),
        ("roc_auc", "ROC-AUC", None),
        ("pr_auc", "PR-AUC", None),
    ],
    "estimated_performance": [
        ("estimated_at", "when", None),
        ("model_version", "version", None),
        ("rows", "rows", None),
        ("pr_auc_estimated", "PR-AUC est.", None),
        ("pr_auc_band", "95% band", _band),
        ("pr_auc_realized", "realized", None),
    ],
    "scoring_runs": [
        ("created_at", "when", None),
        ("input_key", "file", _file),
        ("model_version", "version", None),
        ("rows", "rows", None),
        ("score_mean", "mean score", None),
        ("high_risk_share", "high risk", None),
    ],
    "retention_campaigns": [
        ("model_version", "version", None),
        ("rows", "rows", None),
        ("contacted", "contacted", None),
        ("expected_profit", "expected profit", _money),
    ],
    "realized_profit": [
        ("model_version", "version", None),
        ("rows", "rows", None),
        ("contacted", "contacted", None),
        ("profit", "profit (cut)", _money),
        ("profit_top10", "top 10%", _money),
        ("profit_p50", "p >= 0.5", _money),
    ],
    "rejected_files": [
        ("created_at", "when", None),
        ("object_key", "file", _file),
        ("reason", "why", _short),
    ],
    "alerts": [
        ("created_at", "when", None),
        ("kind", "kind", None),
        ("status", "sent", None),
        ("message", "message", _short),
    ],
    "monitoring_reports": [
        ("created_at", "when", None),
        ("status", "status", None),
        ("current_rows", "rows", None),
        ("reason", "note", _short),
    ],
}
STATUS_TITLES = {
    "promotions": "Promotions",
    "live_performance": "Live performance (labelled batches)",
    "estimated_performance": "Estimated performance (before labels)",
    "scoring_runs": "Recent scoring runs",
    "retention_campaigns": "Retention campaigns (the profit cut's totals)",
    "realized_profit": "Realized profit (labelled batches)",
    "rejected_files": "Rejected files",
    "alerts": "Alerts",
    "monitoring_reports": "Monitoring reports",
}
# Where the newest row of a section points to: printed under its table, one path per line.
STATUS_LOCATIONS = {
    "scoring_runs": ("predictions_uri", "latest predictions"),
    "monitoring_reports": ("report_uris", "latest report"),
}


def _cell(column: str, value: Any, show: Show | None) -> str:
    if value is None or value == "":
        return ""
    if show is not None:
        return show(value)
    if column.endswith("_at"):
        return _local(value)
    if isinstance(value, float):
        return f"{value:.0%}" if column.endswith("_share") else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _short(value)


def _print_rows(section: str, rows: list[dict[str, Any]], settings: Any) -> None:
    from rich import box
    from rich.table import Table

    from churnops_common.storage.factory import where_to_look

    title = STATUS_TITLES.get(section, section)
    if not rows:
        console.print(f"{title}: none", highlight=False)
        return
    columns = [spec for spec in STATUS_COLUMNS.get(section, []) if spec[0] in rows[0]]
    columns = columns or [(c, c.replace("_", " "), None) for c in rows[0]]
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for _, header, _ in columns:
        table.add_column(header)
    for row in rows:
        table.add_row(*(_cell(c, row.get(c), show) for c, _, show in columns))
    console.print(table)
    column, label = STATUS_LOCATIONS.get(section, ("", ""))
    found = rows[0].get(column) if column else None
    if found:
        uris = found if isinstance(found, list) else str(found).split(",")
        for uri in uris:
            console.print(f"  {label}: {where_to_look(settings, str(uri).strip())}")


def _print_status(result: dict[str, Any]) -> None:
    from churnops_common.settings import get_settings

    settings = get_settings()
    mlflow = result["champion"]["mlflow"]
    if mlflow["reachable"]:
        metrics = mlflow["metrics"]
        shown = ", ".join(
            f"{label} {metrics[key]:.3f}"
            for key, label in (
                ("holdout_pr_auc", "holdout PR-AUC"),
                ("holdout_roc_auc", "ROC-AUC"),
                ("holdout_ece", "ECE"),
            )
            if key in metrics
        )
        console.print(
            f"Champion: {mlflow['model_name']} version {mlflow['version']}"
            + (f" ({shown})" if shown else ""),
            highlight=False,
        )
        profit = mlflow.get("profit") or {}
        if profit.get("empc") is not None:
            console.print(
                f"Holdout profit per customer: EMPC {profit['empc']:.4f}, maximum"
                f" {profit['mp']:.4f} contacting {profit['contact_rate']:.1%}",
                highlight=False,
            )
    else:
        console.print(f"Champion: none ({mlflow['error']})", highlight=False)
    where = (
        f"embedded, state in {settings.churnops_home}" if result["mode"] == "embedded" else "stack"
    )
    console.print(f"Mode: {where}", highlight=False)
    _print_rows("promotions", result["champion"]["promotions"], settings)
    for section in STATUS_TITLES:
        if section != "promotions":
            _print_rows(section, result[section], settings)


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
