"""The monitor's records: what a monitoring report wrote to `monitoring.monitoring_reports`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class MonitoringResult(BaseModel):
    """One monitoring report's outcome, as its `monitoring_reports` row keeps it."""

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
