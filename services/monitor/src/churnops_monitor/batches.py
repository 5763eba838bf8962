"""Each scored batch of a monitoring window, reviewed: its drift verdict, what the platform did.

Everything here is read from what the stages recorded, so the report states their decisions
rather than re-deciding: the quality run of the batch (its per-feature PSI, the verdict of
`churnops_common.drift`), the trainer's runs in the batch's chain (a retrain requested, done or
skipped and why: `training_runs.detail`), the promotion decided in it, and the label-free
estimates with the realized values beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import Engine, select

from churnops_common.db.tables import (
    feature_psi,
    model_promotions,
    performance_estimates,
    performance_metrics,
    quality_runs,
    training_runs,
)
from churnops_common.drift import DriftVerdict, headline
from churnops_monitor.sources import ScoringRun

EVIDENTLY_PAGE = "evidently-drift.html"  # beside a quality run's report.html (quality service)
PERFORMANCE_METRICS = ("pr_auc", "roc_auc")
MAX_REVIEWED = 100  # newest batches of a window reviewed one by one (a few queries each)


@dataclass(frozen=True)
class Performance:
    """One metric of a batch: estimated before its labels (with a band), realized after."""

    metric: str
    estimated: float | None = None
    lower: float | None = None
    upper: float | None = None
    realized: float | None = None


@dataclass(frozen=True)
class BatchReview:
    name: str
    uri: str
    scored_at: datetime
    rows: int
    model_version: str
    status: str  # the quality verdict: accepted | rejected | unchecked
    verdict: DriftVerdict | None
    quality_report: str | None
    actions: list[str] = field(default_factory=list)
    performance: list[Performance] = field(default_factory=list)

    @property
    def evidently_report(self) -> str | None:
        if self.quality_report is None or self.verdict is None:
            return None
        return f"{self.quality_report.rsplit('/', 1)[0]}/{EVIDENTLY_PAGE}"

    @property
    def headline(self) -> str:
        if self.status == "unchecked":
            return "no quality run recorded"
        return headline(self.status, self.verdict, "; ".join(self.actions) or None)


def review_batches(engine: Engine, runs: list[ScoringRun], threshold: float) -> list[BatchReview]:
    """The window's newest `MAX_REVIEWED` batches, oldest first."""
    newest = sorted(runs, key=lambda r: r.created_at)[-MAX_REVIEWED:]
    return [_review(engine, run, threshold) for run in newest]


def _review(engine: Engine, run: ScoringRun, threshold: float) -> BatchReview:
    quality = _quality_run(engine, run)
    verdict = None
    if quality is not None and quality["psi"]:
        details = quality["details"] if isinstance(quality["details"], dict) else {}
        verdict = DriftVerdict(quality["psi"], float(details.get("psi_threshold", threshold)))
    actions = _actions(engine, quality, verdict) if quality is not None else []
    return BatchReview(
        name=PurePosixPath(run.input_key).name,
        uri=f"s3://{run.input_bucket}/{run.input_key}",
        scored_at=run.created_at,
        rows=run.rows,
        model_version=run.model_version,
        status=str(quality["status"]) if quality is not None else "unchecked",
        verdict=verdict,
        quality_report=quality["report_uri"] if quality is not None else None,
        actions=actions,
        performance=_performance(engine, run),
    )


def _quality_run(engine: Engine, run: ScoringRun) -> dict[str, Any] | None:
    """The newest check of exactly the scored version of the input, with its PSI per feature."""
    q = quality_runs.c
    query = (
        select(q.run_id, q.status, q.report_uri, q.correlation_id, q.details)
        .where(
            q.bucket == run.input_bucket, q.object_key == run.input_key, q.etag == run.input_etag
        )
        .order_by(q.created_at.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
        if row is None:
            return None
        psi = dict(
            conn.execute(
                select(feature_psi.c.feature, feature_psi.c.psi).where(
                    feature_psi.c.run_id == row.run_id
                )
            ).all()
        )
    return {**row._asdict(), "psi": psi}


def _actions(engine: Engine, quality: dict[str, Any], verdict: DriftVerdict | None) -> list[str]:
    """What the platform did in the batch's chain, in words, in the order it happened."""
    chain = quality["correlation_id"]
    t, p = training_runs.c, model_promotions.c
    with engine.connect() as conn:
        trainings = conn.execute(
            select(t.trigger, t.status, t.detail, t.model_version)
            .where(t.correlation_id == chain)
            .order_by(t.started_at)
        ).all()
        decisions = {
            row.challenger_version: row
            for row in conn.execute(
                select(p.challenger_version, p.decision, p.reason).where(p.correlation_id == chain)
            )
        }
    actions = ["retrain requested"] if verdict is not None and verdict.has_drift else []
    for training in trainings:
        actions.append(_training_words(training, decisions.get(training.model_version)))
    return actions


def _training_words(training: Any, decision: Any) -> str:
    why = f" ({training.trigger})" if training.trigger != "drift" else ""
    if training.status == "skipped":
        return f"retrain{why} skipped: {training.detail}"
    if training.status == "running":
        return f"retrain{why} running"
    if training.status == "failed":
        return f"retrain{why} failed: {training.detail}"
    if decision is not None:
        return f"retrained{why}: v{training.model_version} {decision.decision} ({decision.reason})"
    return f"retrained{why}: v{training.model_version}"


def _performance(engine: Engine, run: ScoringRun) -> list[Performance]:
    e, m = performance_estimates.c, performance_metrics.c
    with engine.connect() as conn:
        estimates = {
            row.metric: row
            for row in conn.execute(
                select(e.metric, e.value, e.lower, e.upper, e.realized).where(
                    e.scoring_run_id == run.run_id, e.metric.in_(PERFORMANCE_METRICS)
                )
            )
        }
        # A batch that carried its outcomes: its realized metrics, estimated or not.
        realized = conn.execute(
            select(m.pr_auc, m.roc_auc)
            .where(
                m.source == "batch",
                m.source_bucket == run.input_bucket,
                m.source_key == run.input_key,
                m.source_etag == run.input_etag,
                m.model_version == run.model_version,
            )
            .order_by(m.computed_at.desc())
            .limit(1)
        ).first()
    found = []
    for metric in PERFORMANCE_METRICS:
        estimate = estimates.get(metric)
        known = getattr(realized, metric) if realized is not None else None
        if estimate is None and known is None:
            continue
        found.append(
            Performance(
                metric,
                estimated=estimate.value if estimate else None,
                lower=estimate.lower if estimate else None,
                upper=estimate.upper if estimate else None,
                realized=estimate.realized if estimate and estimate.realized is not None else known,
            )
        )
    return found
