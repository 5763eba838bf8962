"""The monitoring report: recent inputs and predictions against the reference, on demand or weekly.

Writes HTML under `reports/monitoring/<date>/<report id>/` (an index with each batch's verdict
and what the platform did, see report_index.py), a summary JSON beside it, an MLflow run
`monitoring_metrics`, a `monitoring.monitoring_reports` row, and rewrites the index of all
reports (`reports/monitoring/index.html`). With no predictions in the window it records a
skipped row with the reason and builds nothing else.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from churnops_common.contract import load_contract
from churnops_common.db.engine import is_sqlite
from churnops_common.db.tables import monitoring_reports, performance_metrics
from churnops_common.errors import PermanentError
from churnops_common.runtime import Runtime
from churnops_monitor.batches import BatchReview, review_batches
from churnops_monitor.decision import contact_of, threshold_of
from churnops_monitor.evidently_reports import (
    BuiltReport,
    classification_report,
    data_drift_report,
    prediction_drift_report,
)
from churnops_monitor.metrics import evaluate
from churnops_monitor.performance import PREDICTION_META
from churnops_monitor.profit_plot import render_profit
from churnops_monitor.reference import Reference, earliest_batch, find_reference
from churnops_monitor.report_index import render_index
from churnops_monitor.runs_index import publish_runs_index
from churnops_monitor.sources import (
    SCORE,
    ScoringRun,
    list_scoring_runs,
    read_inputs,
    read_labels,
    read_predictions_if_present,
)
from churnops_monitor.trends import render_trends

log = logging.getLogger(__name__)

EXPERIMENT = "churnops-monitoring"
RUN_NAME = "monitoring_metrics"
LABEL_FILES = 50  # newest labels files joined to the window's predictions


class MonitoringResult(BaseModel):
    report_id: str
    status: Literal["done", "skipped"]
    reason: str | None = None
    window_start: datetime
    window_end: datetime
    scoring_runs: int = 0
    current_rows: int = 0
    labelled_rows: int = 0
    reference_source: str | None = None
    reference_uri: str | None = None
    reference_note: str | None = None
    report_uris: list[str] = []
    metrics: dict[str, float] = {}
    mlflow_run_id: str | None = None


def _latest_per_input(runs: list[ScoringRun]) -> list[ScoringRun]:
    """A batch rescored after a promotion counts once, with its newest predictions."""
    seen: dict[tuple[str, str, str], ScoringRun] = {}
    for run in runs:  # newest first
        seen.setdefault((run.input_bucket, run.input_key, run.input_etag), run)
    return list(seen.values())


def current_frame(runtime: Runtime, runs: list[ScoringRun]) -> tuple[pd.DataFrame | None, int]:
    """Predictions of the window's batches joined to their inputs' features, and the row count.

    Each batch is sampled to the report's row cap as it is read, so a busy week cannot exhaust
    memory; the count is of all rows.
    """
    id_col, cap = runtime.settings.id_column, runtime.settings.monitor_report_max_rows
    frames, total = [], 0
    for run in runs:
        preds = read_predictions_if_present(runtime.store, run.predictions_uri, id_col)
        if preds is None:
            continue
        total += len(preds)
        preds = _sample(preds, cap)
        inputs = read_inputs(runtime.store, run, id_col)
        if inputs is not None:
            extra = [c for c in inputs.columns if c not in preds.columns]
            preds = preds.merge(inputs[[id_col, *extra]], on=id_col, how="left")
        frames.append(preds)
    return (pd.concat(frames, ignore_index=True) if frames else None), total


def attach_labels(runtime: Runtime, frame: pd.DataFrame) -> pd.DataFrame:
    """Fill the target from labels files the monitor has seen (a batch's own target stays)."""
    settings = runtime.settings
    id_col, target = settings.id_column, settings.target_column
    with runtime.engine.connect() as conn:
        newest = func.max(performance_metrics.c.computed_at)
        sources = conn.execute(
            select(performance_metrics.c.source_bucket, performance_metrics.c.source_key)
            .where(performance_metrics.c.source == "labels")
            .group_by(performance_metrics.c.source_bucket, performance_metrics.c.source_key)
            .order_by(newest.desc())
            .limit(LABEL_FILES)
        ).all()
    known: dict[str, int] = {}
    for bucket, key in reversed(sources):  # oldest first: a newer file's outcome wins
        try:
            labels = read_labels(runtime.store, bucket, key, id_column=id_col, target=target)
        except FileNotFoundError:
            continue
        known.update(zip(labels[id_col], labels[target], strict=True))
    if target not in frame:
        frame[target] = pd.NA
    from_labels = frame[id_col].map(known)
    frame[target] = frame[target].where(frame[target].notna(), from_labels)
    return frame


def _sample(frame: pd.DataFrame, cap: int) -> pd.DataFrame:
    return frame.sample(cap, random_state=0) if len(frame) > cap else frame


def build_reports(
    runtime: Runtime,
    reference: Reference,
    current: pd.DataFrame,
    reference_scores: pd.Series,
    folder: Path,
) -> list[BuiltReport]:
    settings = runtime.settings
    exclude = set(PREDICTION_META) | {settings.id_column, settings.target_column}
    cap, threshold = settings.monitor_report_max_rows, settings.psi_threshold
    built = [
        data_drift_report(
            _sample(reference.frame, cap),
            _sample(current, cap),
            exclude,
            folder,
            threshold=threshold,
            schema=load_contract(runtime.store, settings),
        ),
        prediction_drift_report(
            _sample(reference_scores.to_frame(), cap)[SCORE],
            _sample(current, cap)[SCORE],
            folder,
            threshold,
        ),
    ]
    labelled = current[current[settings.target_column].notna()]
    if len(labelled):
        sample = _sample(labelled, cap)
        threshold = threshold_of(sample[SCORE].to_numpy(), contact_of(sample, settings))
        built.append(classification_report(sample, settings.target_column, threshold, folder))
    return [b for b in built if b is not None]


def reference_scores_for(runtime: Runtime, reference: Reference) -> pd.Series:
    """Scores to compare the window's scores with: the reference's own, else the first batch's."""
    if SCORE in reference.frame:
        return reference.frame[SCORE]
    first = earliest_batch(runtime)
    if first is None:  # unreachable while the window's own predictions exist
        raise PermanentError("no scored batch left to compare the scores with")
    return first[1][SCORE]


def own_metrics(runtime: Runtime, current: pd.DataFrame) -> dict[str, float]:
    """The monitor's own performance figures on the labelled rows, beside Evidently's."""
    settings = runtime.settings
    labelled = current[current[settings.target_column].notna()]
    values: dict[str, float] = {
        "current.rows": float(len(current)),
        "current.mean_score": float(current[SCORE].mean()),
        "current.labelled_rows": float(len(labelled)),
    }
    if len(labelled):
        contact = contact_of(labelled, settings)  # the profit cut, over the window's rows
        perf = evaluate(
            labelled[settings.target_column].astype(int).to_numpy(),
            labelled[SCORE].to_numpy(),
            threshold=threshold_of(labelled[SCORE].to_numpy(), contact),
            top_k_share=settings.monitor_top_k_share,
            contact=contact,
        )
        for name in (
            "roc_auc",
            "pr_auc",
            "precision_at_threshold",
            "recall_at_threshold",
            "precision_at_k",
            "brier",
        ):
            value = getattr(perf, name)
            if value is not None:
                values[f"performance.{name}"] = float(value)
    return values


def log_to_mlflow(runtime: Runtime, result: MonitoringResult, folder: Path) -> str | None:
    """An MLflow run with the metrics and the HTML; a tracking failure never loses the report."""
    try:
        import mlflow

        from churnops_common.mlflow_setup import ensure_experiment

        experiment_id = ensure_experiment(runtime.settings, EXPERIMENT)
        # No process-wide active experiment: embedded mode runs every service in one process.
        with mlflow.start_run(experiment_id=experiment_id, run_name=RUN_NAME) as run:
            mlflow.set_tags({"report_id": result.report_id, "kind": "monitoring"})
            mlflow.log_params(
                {
                    "window_start": result.window_start.isoformat(),
                    "window_end": result.window_end.isoformat(),
                    "scoring_runs": result.scoring_runs,
                    "reference_source": result.reference_source,
                    "reference_uri": result.reference_uri,
                }
            )
            mlflow.log_metrics({_mlflow_key(k): v for k, v in result.metrics.items()})
            mlflow.log_artifacts(str(folder), artifact_path="reports")
            return str(run.info.run_id)
    except Exception as exc:  # MLflow down: the report in the bucket still stands
        log.warning("monitoring report %s not logged to MLflow: %s", result.report_id, exc)
        return None


def _mlflow_key(key: str) -> str:
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)[:250]


def record(runtime: Runtime, result: MonitoringResult, correlation_id: str) -> None:
    row: dict[str, Any] = result.model_dump(exclude={"reference_note"})
    row.update(correlation_id=correlation_id, created_at=datetime.now(UTC))
    insert = sqlite_insert if is_sqlite(runtime.engine) else pg_insert
    with runtime.engine.begin() as conn:
        conn.execute(
            insert(monitoring_reports)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["report_id"])
        )


def run_monitoring(
    runtime: Runtime,
    *,
    report_id: str,
    correlation_id: str,
    since: datetime | None = None,
    now: datetime | None = None,
) -> MonitoringResult:
    now = now or datetime.now(UTC)
    start = since or now - timedelta(days=runtime.settings.monitor_window_days)
    result = MonitoringResult(
        report_id=report_id, status="skipped", window_start=start, window_end=now
    )
    runs = _latest_per_input(list_scoring_runs(runtime.engine, since=start))
    if not runs:
        any_run = list_scoring_runs(runtime.engine, limit=1)
        result.reason = (
            f"no batches scored since {start.isoformat()}" if any_run else "no predictions yet"
        )
        log.info("monitoring report %s skipped: %s", report_id, result.reason)
        return _recorded(runtime, result, correlation_id)
    frame, total_rows = current_frame(runtime, runs)
    if frame is None:
        result.reason = (
            f"the predictions of the {len(runs)} batch(es) scored since"
            f" {start.isoformat()} are gone"
        )
        log.warning("monitoring report %s skipped: %s", report_id, result.reason)
        return _recorded(runtime, result, correlation_id)
    reference = find_reference(runtime)
    if reference is None:  # unreachable while the window's own predictions exist
        raise PermanentError("no reference data: no baseline, training data or scored batch")
    current = attach_labels(runtime, frame)
    ref_scores = reference_scores_for(runtime, reference)
    result = _build(runtime, result, runs, reference, current, ref_scores, total_rows)
    return _recorded(runtime, result, correlation_id)


def _recorded(runtime: Runtime, result: MonitoringResult, correlation_id: str) -> MonitoringResult:
    record(runtime, result, correlation_id)
    try:
        publish_runs_index(runtime)
    except Exception as exc:  # the report and its row stand; the next report rewrites the index
        log.warning("index of monitoring reports not rewritten: %s", exc)
    return result


def relative_link(runtime: Runtime, prefix: str) -> Callable[[str | None], str | None]:
    """An href from a page under `prefix` (a key folder of the reports bucket) to a stored
    report, when that report is in the bucket (None: not there, nothing to link)."""
    bucket = runtime.settings.minio_reports_bucket
    up = "../" * (prefix.count("/") + 1)

    def link(uri: str | None) -> str | None:
        if not uri or not uri.startswith(f"s3://{bucket}/"):
            return None
        key = uri.removeprefix(f"s3://{bucket}/")
        return up + key if runtime.store.exists(bucket, key) else None

    return link


def batch_metrics(batches: list[BatchReview]) -> dict[str, float]:
    checked = [b for b in batches if b.verdict is not None]
    return {
        "batches.checked": float(len(checked)),
        "batches.drifted": float(sum(1 for b in checked if b.verdict and b.verdict.has_drift)),
    }


def _build(
    runtime: Runtime,
    result: MonitoringResult,
    runs: list[ScoringRun],
    reference: Reference,
    current: pd.DataFrame,
    ref_scores: pd.Series,
    total_rows: int,
) -> MonitoringResult:
    target = runtime.settings.target_column
    update: dict[str, Any] = {
        "status": "done",
        "scoring_runs": len(runs),
        "current_rows": total_rows,
        "labelled_rows": int(current[target].notna().sum()),
        "reference_source": reference.source,
        "reference_uri": reference.uri,
        "reference_note": reference.note,
    }
    if reference.source != "baseline":
        log.warning("monitoring report %s: %s", result.report_id, reference.note)
    prefix = f"monitoring/{result.window_end:%Y-%m-%d}/{result.report_id[:12]}"
    bucket = runtime.settings.minio_reports_bucket
    with tempfile.TemporaryDirectory(prefix="churnops-monitor-") as tmp:
        folder = Path(tmp)
        built = build_reports(runtime, reference, current, ref_scores, folder)
        threshold = runtime.settings.psi_threshold
        batches = review_batches(runtime.engine, runs, threshold)
        metrics: dict[str, float] = own_metrics(runtime, current) | batch_metrics(batches)
        for report in built:
            metrics.update(report.metrics)
        result = result.model_copy(update={**update, "metrics": metrics})
        (folder / "trends.html").write_text(render_trends(runtime.engine), encoding="utf-8")
        (folder / "profit.html").write_text(render_profit(runtime.engine), encoding="utf-8")
        pages = sorted(p.name for p in folder.glob("*.html"))
        index = render_index(result, pages, batches, relative_link(runtime, prefix), threshold)
        (folder / "index.html").write_text(index, encoding="utf-8")
        (folder / "summary.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
        uris = [
            runtime.store.put_file(
                bucket,
                f"{prefix}/{path.name}",
                path,
                "text/html" if path.suffix == ".html" else "application/json",
            ).uri
            for path in sorted(folder.iterdir())
        ]
        result = result.model_copy(update={"report_uris": uris})
        result.mlflow_run_id = log_to_mlflow(runtime, result, folder)
    log.info(
        "monitoring report %s: %d batches, %d rows -> %s",
        result.report_id,
        result.scoring_runs,
        result.current_rows,
        json.dumps(uris),
    )
    return result
