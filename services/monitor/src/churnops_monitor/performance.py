"""Live performance: labelled predictions -> metrics, segment rows and PerformanceDegraded.

Two sources of outcomes: a labels file (ids and targets, joined to whichever predictions scored
those ids, per model version) and a scored batch that carried its own target.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
from sqlalchemy import Engine, select, update

from churnops_common.db.inserts import insert_for
from churnops_common.db.tables import (
    model_promotions,
    performance_metrics,
    realized_profits,
    segment_metrics,
)
from churnops_common.events import Event, ObjectRef, PerformanceDegraded, stable_id
from churnops_common.ml.economics import RealizedProfit
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings
from churnops_monitor.decision import contact_of, realized_profit, threshold_of
from churnops_monitor.metrics import PerformanceMetrics, evaluate
from churnops_monitor.segments import SegmentRow, default_segment_columns
from churnops_monitor.segments import segment_metrics as compute_segments
from churnops_monitor.sources import (
    SCORE,
    list_scoring_runs,
    read_inputs,
    read_predictions_if_present,
)

log = logging.getLogger(__name__)

# How many of the latest scoring runs a labels file is matched against.
LABEL_LOOKBACK_RUNS = 200
# Columns of the predictions contract that describe the prediction, not the customer.
PREDICTION_META = frozenset(
    {
        SCORE,
        "risk_band",  # a function of the score: as a segment it would only restate it
        "model_name",
        "model_version",
        "reason_1",
        "reason_2",
        "reason_3",
        "reason_1_log_odds",
        "reason_2_log_odds",
        "reason_3_log_odds",
        # Files scored before the reasons' strength said its unit.
        "reason_1_contribution",
        "reason_2_contribution",
        "reason_3_contribution",
        "input_object",
        "input_etag",
        "outcome_date",
    }
)
Source = Literal["labels", "batch"]


@dataclass
class LabelledSet:
    """One model version's predictions with their outcomes (and features where available)."""

    model_name: str
    model_version: str
    frame: pd.DataFrame
    scoring_run_ids: list[str] = field(default_factory=list)
    unmatched_rows: int = 0


@dataclass(frozen=True)
class Evaluation:
    run_id: str
    labelled: LabelledSet
    metrics: PerformanceMetrics
    segments: list[SegmentRow]
    degraded: list[tuple[str, float, float]]  # (metric, value, threshold)
    profit: RealizedProfit | None = None


def segment_columns_for(frame: pd.DataFrame, settings: Settings) -> list[str]:
    configured = [c.strip() for c in settings.monitor_segment_columns.split(",") if c.strip()]
    if configured:
        return [c for c in configured if c in frame.columns]
    exclude = PREDICTION_META | {settings.id_column, settings.target_column}
    return default_segment_columns(frame, exclude)


def degraded_checks(
    metrics: PerformanceMetrics, settings: Settings
) -> list[tuple[str, float, float]]:
    """Metrics below their threshold; none on too few labelled rows to judge."""
    if metrics.rows < settings.monitor_min_labelled_rows:
        return []
    checks = (
        ("pr_auc", metrics.pr_auc, settings.monitor_min_pr_auc),
        ("roc_auc", metrics.roc_auc, settings.monitor_min_roc_auc),
    )
    return [
        (name, value, limit) for name, value, limit in checks if value is not None and value < limit
    ]


def evaluate_set(labelled: LabelledSet, run_id: str, settings: Settings) -> Evaluation:
    """Metrics of the labelled rows, with the profit cut as the decision, and the realized
    profit of that cut against the plain policies."""
    frame, target = labelled.frame, settings.target_column
    contact = contact_of(frame, settings)
    threshold = threshold_of(frame[SCORE].to_numpy(), contact)
    metrics = evaluate(
        frame[target].to_numpy(),
        frame[SCORE].to_numpy(),
        threshold=threshold,
        top_k_share=settings.monitor_top_k_share,
        contact=contact,
    )
    segments = compute_segments(
        frame,
        target=target,
        score=SCORE,
        threshold=threshold,
        columns=segment_columns_for(frame, settings),
    )
    degraded = degraded_checks(metrics, settings)
    profit = realized_profit(frame, target, settings)
    return Evaluation(run_id, labelled, metrics, segments, degraded, profit)


def performance_run_id(source: ObjectRef, model_name: str, model_version: str) -> str:
    return str(stable_id("performance", source.versioned_uri, model_name, model_version))


def _outcome_range(frame: pd.DataFrame) -> tuple[Any, Any]:
    if "outcome_date" not in frame or frame["outcome_date"].isna().all():
        return None, None
    return frame["outcome_date"].min().to_pydatetime(), frame["outcome_date"].max().to_pydatetime()


def store_evaluation(
    engine: Engine, ev: Evaluation, source: Source, ref: ObjectRef, correlation_id: str
) -> None:
    """Write the metrics row and its segment rows; a second write of the same run is a no-op."""
    now = datetime.now(UTC)
    outcome_from, outcome_to = _outcome_range(ev.labelled.frame)
    row = {
        "run_id": ev.run_id,
        "source": source,
        "source_bucket": ref.bucket,
        "source_key": ref.key,
        "source_etag": ref.etag,
        "model_name": ev.labelled.model_name,
        "model_version": ev.labelled.model_version,
        "scoring_run_ids": ev.labelled.scoring_run_ids,
        "unmatched_rows": ev.labelled.unmatched_rows,
        **ev.metrics.as_row(),
        "outcome_from": outcome_from,
        "outcome_to": outcome_to,
        "degraded_metrics": [name for name, _, _ in ev.degraded],
        "degraded_emitted": False,
        "correlation_id": correlation_id,
        "computed_at": now,
    }
    with engine.begin() as conn:
        conn.execute(
            insert_for(engine, performance_metrics)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["run_id"])
        )
        for seg in ev.segments:
            conn.execute(
                insert_for(engine, segment_metrics)
                .values(
                    run_id=ev.run_id,
                    model_version=ev.labelled.model_version,
                    computed_at=now,
                    **seg.model_dump(),
                )
                .on_conflict_do_nothing(
                    index_elements=["run_id", "segment_column", "segment_value"]
                )
            )
        if ev.profit is not None:  # beside the metrics row: what the cut earned, and the rest
            conn.execute(
                insert_for(engine, realized_profits)
                .values(
                    run_id=ev.run_id,
                    model_name=ev.labelled.model_name,
                    model_version=ev.labelled.model_version,
                    computed_at=now,
                    **vars(ev.profit),
                )
                .on_conflict_do_nothing(index_elements=["run_id"])
            )


def champion_version(engine: Engine, model_name: str) -> str | None:
    """The latest promoted version from the audit trail, or the version that scored last."""
    with engine.connect() as conn:
        promoted = conn.execute(
            select(model_promotions.c.challenger_version)
            .where(
                model_promotions.c.model_name == model_name,
                model_promotions.c.decision == "promoted",
            )
            .order_by(model_promotions.c.decided_at.desc())
            .limit(1)
        ).scalar_one_or_none()
    if promoted is not None:
        return str(promoted)
    latest = [r for r in list_scoring_runs(engine, limit=20) if r.model_name == model_name]
    return latest[0].model_version if latest else None


def _alerted_by(engine: Engine, model_name: str, model_version: str) -> list[tuple[str, str]]:
    """(run_id, correlation_id) of the runs that already reported this version degraded."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(performance_metrics.c.run_id, performance_metrics.c.correlation_id).where(
                performance_metrics.c.model_name == model_name,
                performance_metrics.c.model_version == model_version,
                performance_metrics.c.degraded_emitted.is_(True),
            )
        ).all()
    return [(row.run_id, row.correlation_id) for row in rows]


def _reported_elsewhere(runtime: Runtime, event: Event, ev: Evaluation) -> bool:
    """True when another run (or another chain) already reported this version degraded.

    The flag is committed before the dispatcher publishes the follow-up. When it was set by
    this same run in this same chain, the earlier attempt's publish may have failed: the
    event is derived again with the same id (downstream drops it if it did get through).
    """
    name, version = ev.labelled.model_name, ev.labelled.model_version
    return any(
        run_id != ev.run_id or correlation_id != event.correlation_id
        for run_id, correlation_id in _alerted_by(runtime.engine, name, version)
    )


def degraded_followups(
    runtime: Runtime, event: Event, evaluations: list[Evaluation], live_version: str | None
) -> list[PerformanceDegraded]:
    """PerformanceDegraded for the live version, once per version (a retrain is enough).

    Only the live model triggers: an old version's poor score on late labels is history, and
    asking for a retrain because of it would be noise.
    """
    followups: list[PerformanceDegraded] = []
    for ev in evaluations:
        name, version = ev.labelled.model_name, ev.labelled.model_version
        if not ev.degraded or version != live_version:
            continue
        if _reported_elsewhere(runtime, event, ev):
            log.info("%s v%s already reported degraded; not again", name, version)
            continue
        metric, value, threshold = ev.degraded[0]  # PR-AUC first: the platform's key metric
        followups.append(
            event.derive(
                PerformanceDegraded,
                f"{name}:{version}",
                model_name=name,
                model_version=version,
                metric=metric,
                value=value,
                threshold=threshold,
            )
        )
        with runtime.engine.begin() as conn:
            # The chain that reported it: a retry in that chain may report it again.
            conn.execute(
                update(performance_metrics)
                .where(performance_metrics.c.run_id == ev.run_id)
                .values(degraded_emitted=True, correlation_id=event.correlation_id)
            )
    return followups


def join_labels(runtime: Runtime, labels: pd.DataFrame) -> list[LabelledSet]:
    """Per model version, the latest prediction of each labelled id, with its input features."""
    settings = runtime.settings
    id_col, target = settings.id_column, settings.target_column
    wanted = set(labels[id_col])
    sets: dict[tuple[str, str], LabelledSet] = {}
    for run in list_scoring_runs(runtime.engine, limit=LABEL_LOOKBACK_RUNS):
        preds = read_predictions_if_present(runtime.store, run.predictions_uri, id_col)
        if preds is None:
            continue
        key = (run.model_name, run.model_version)
        taken = set(sets[key].frame[id_col]) if key in sets else set()
        hit = preds[preds[id_col].isin(wanted) & ~preds[id_col].isin(taken)]
        if hit.empty:
            continue
        hit = hit.drop(columns=[target], errors="ignore").merge(labels, on=id_col)
        inputs = read_inputs(runtime.store, run, id_col)
        if inputs is not None:
            extra = [c for c in inputs.columns if c not in hit.columns and c != target]
            hit = hit.merge(inputs[[id_col, *extra]], on=id_col, how="left")
        if key in sets:
            sets[key].frame = pd.concat([sets[key].frame, hit], ignore_index=True)
            sets[key].scoring_run_ids.append(run.run_id)
        else:
            sets[key] = LabelledSet(run.model_name, run.model_version, hit, [run.run_id])
    for labelled in sets.values():
        labelled.unmatched_rows = len(wanted) - len(labelled.frame)
    return list(sets.values())
