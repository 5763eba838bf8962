"""`churnops status`: the champion, recent scoring runs, rejected files, alerts, at a glance."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select

from churnops_common.db.tables import (
    alerts,
    model_promotions,
    monitoring_reports,
    performance_metrics,
    quality_runs,
    realized_profits,
    retention_campaigns,
    scoring_runs,
)
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings

RECENT = 5
PROFIT_METRICS = ("empc", "mp", "contact_rate")


def _rows(
    runtime: Runtime,
    table: Table,
    columns: list[str],
    order: str,
    where: Any = None,
    limit: int = RECENT,
) -> list[dict[str, Any]]:
    query = select(*(table.c[c] for c in columns)).order_by(table.c[order].desc()).limit(limit)
    if where is not None:
        query = query.where(where)
    with runtime.engine.connect() as conn:
        return [{k: _plain(v) for k, v in row._mapping.items()} for row in conn.execute(query)]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def champion_from_mlflow(settings: Settings) -> dict[str, Any]:
    """The `champion` alias and its run's metrics, or why they could not be read."""
    local_store = settings.churnops_home / "mlflow.db"
    if not settings.is_stack and not settings.mlflow_tracking_uri and not local_store.exists():
        # Asking would create an empty store; say plainly that nothing was trained here.
        return {"reachable": False, "error": "no MLflow store yet (nothing trained)"}
    # Fail fast when the server is down: status must answer in seconds.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    try:
        from mlflow import MlflowClient

        from churnops_common.mlflow_setup import configure_mlflow

        configure_mlflow(settings)
        client = MlflowClient()
        version = client.get_model_version_by_alias(settings.mlflow_model_name, "champion")
        metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
    except Exception as exc:  # unreachable server, no such model or alias
        return {"reachable": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {
        "reachable": True,
        "model_name": settings.mlflow_model_name,
        "version": str(version.version),
        "run_id": version.run_id,
        "metrics": metrics,
        # Holdout profit under the campaign economics (absent on versions trained before it).
        "profit": {name: metrics.get(f"holdout_{name}") for name in PROFIT_METRICS},
    }


def gather_status(runtime: Runtime) -> dict[str, Any]:
    settings = runtime.settings
    return {
        "mode": settings.churnops_mode,
        "champion": {
            "mlflow": champion_from_mlflow(settings),
            "promotions": _rows(
                runtime,
                model_promotions,
                [
                    "model_name",
                    "challenger_version",
                    "champion_version",
                    "challenger_pr_auc",
                    "champion_pr_auc",
                    "decision",
                    "reason",
                    "decided_at",
                ],
                "decided_at",
            ),
        },
        "live_performance": _rows(
            runtime,
            performance_metrics,
            [
                "model_version",
                "source",
                "source_key",
                "rows",
                "roc_auc",
                "pr_auc",
                "brier",
                "degraded_metrics",
                "computed_at",
            ],
            "computed_at",
        ),
        "estimated_performance": _estimated(runtime),
        "scoring_runs": _rows(
            runtime,
            scoring_runs,
            [
                "run_id",
                "input_key",
                "model_version",
                "rows",
                "score_mean",
                "high_risk_share",
                "pr_auc",
                "predictions_uri",
                "created_at",
            ],
            "created_at",
        ),
        "retention_campaigns": _rows(
            runtime,
            retention_campaigns,
            ["scoring_run_id", "model_version", "rows", "contacted", "expected_profit"],
            "created_at",
        ),
        "realized_profit": _rows(
            runtime,
            realized_profits,
            ["model_version", "rows", "contacted", "profit", "profit_top10", "profit_p50"],
            "computed_at",
        ),
        "rejected_files": _rows(
            runtime,
            quality_runs,
            ["bucket", "object_key", "reason", "created_at"],
            "created_at",
            where=quality_runs.c.status == "rejected",
        ),
        "alerts": _rows(
            runtime,
            alerts,
            ["kind", "status", "message", "attempts", "error", "created_at"],
            "created_at",
            limit=10,
        ),
        "monitoring_reports": _rows(
            runtime,
            monitoring_reports,
            [
                "report_id",
                "status",
                "reason",
                "current_rows",
                "reference_source",
                "report_uris",
                "created_at",
            ],
            "created_at",
            limit=3,
        ),
    }


def _estimated(runtime: Runtime) -> list[dict[str, Any]]:
    """Per recent batch: estimated PR-AUC and ROC-AUC with their bands, realized when known."""
    from churnops_monitor.estimates import latest_estimates

    rows = []
    for batch in latest_estimates(runtime, limit=5):
        row: dict[str, Any] = {"model_version": batch["model_version"], "rows": batch["rows"]}
        for metric in ("pr_auc", "roc_auc"):
            found = batch.get(metric) or {}
            row[f"{metric}_estimated"] = found.get("value")
            row[f"{metric}_band"] = _band(found)
            row[f"{metric}_realized"] = found.get("realized")
        row["expected_churners"] = (batch.get("expected_churners") or {}).get("value")
        row["estimated_at"] = batch["estimated_at"]
        rows.append(row)
    return rows


def _band(found: dict[str, Any]) -> str | None:
    lower, upper = found.get("lower"), found.get("upper")
    return None if lower is None or upper is None else f"{lower:.3f}-{upper:.3f}"
