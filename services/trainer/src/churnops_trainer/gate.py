"""The promotion gate: challenger and champion on the same holdout, and its audit row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from churnops_common.db.engine import is_sqlite
from churnops_common.db.tables import model_promotions, training_runs
from churnops_common.ml.integrity import ArtifactDigest
from churnops_common.ml.profit_metrics import ProfitMetrics


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger_pr_auc: float
    champion_pr_auc: float | None
    champion_version: str | None


@dataclass(frozen=True)
class Calibration:
    """Both models' holdout ECE and how much worse the challenger's may be."""

    challenger_ece: float
    champion_ece: float
    tolerance: float

    @property
    def acceptable(self) -> bool:
        return not self.challenger_ece > self.champion_ece + self.tolerance


@dataclass(frozen=True)
class Profit:
    """Both models' holdout EMPC (expected maximum profit per customer, same economics)."""

    challenger_empc: float
    champion_empc: float

    @property
    def acceptable(self) -> bool:
        return not self.challenger_empc < self.champion_empc


def profit_rule(challenger: ProfitMetrics, champion: ProfitMetrics | None) -> Profit | None:
    """The EMPC rule's figures; None (no rule) where either EMPC is undefined."""
    if champion is None or challenger.empc is None or champion.empc is None:
        return None
    return Profit(challenger.empc, champion.empc)


def decide(
    challenger_pr_auc: float,
    champion_version: str | None,
    champion_pr_auc: float | None,
    margin: float,
    calibration: Calibration | None = None,
    profit: Profit | None = None,
) -> Decision:
    """Promote when there is no champion, or the challenger beats it by at least `margin`, its
    calibration (ECE) is not worse than the champion's by more than the tolerance and, when the
    EMPC rule is on (`profit`), its EMPC is no worse than the champion's."""
    if champion_version is None or champion_pr_auc is None:
        return Decision(True, "no champion yet", challenger_pr_auc, None, None)
    needed = champion_pr_auc + margin
    gain = challenger_pr_auc - champion_pr_auc
    if challenger_pr_auc < needed:
        reason = (
            f"challenger PR-AUC {challenger_pr_auc:.4f} does not beat champion"
            f" v{champion_version} {champion_pr_auc:.4f} by the margin {margin:.4f}"
            f" (difference {gain:+.4f})"
        )
        return Decision(False, reason, challenger_pr_auc, champion_pr_auc, champion_version)
    if calibration is not None and not calibration.acceptable:
        reason = (
            f"challenger PR-AUC {challenger_pr_auc:.4f} beats champion v{champion_version}"
            f" {champion_pr_auc:.4f} by {gain:+.4f}, but its holdout ECE"
            f" {calibration.challenger_ece:.4f} is worse than the champion's"
            f" {calibration.champion_ece:.4f} by more than {calibration.tolerance:.4f}"
        )
        return Decision(False, reason, challenger_pr_auc, champion_pr_auc, champion_version)
    if profit is not None and not profit.acceptable:
        reason = (
            f"challenger PR-AUC {challenger_pr_auc:.4f} beats champion v{champion_version}"
            f" {champion_pr_auc:.4f} by {gain:+.4f}, but its holdout EMPC"
            f" {profit.challenger_empc:.4f} is below the champion's {profit.champion_empc:.4f}"
        )
        return Decision(False, reason, challenger_pr_auc, champion_pr_auc, champion_version)
    reason = (
        f"challenger PR-AUC {challenger_pr_auc:.4f} beats champion v{champion_version}"
        f" {champion_pr_auc:.4f} by {gain:+.4f} (margin {margin:.4f})"
    )
    if calibration is not None:
        reason += (
            f"; holdout ECE {calibration.challenger_ece:.4f} vs {calibration.champion_ece:.4f}"
        )
    if profit is not None:
        reason += f"; holdout EMPC {profit.challenger_empc:.4f} vs {profit.champion_empc:.4f}"
    return Decision(True, reason, challenger_pr_auc, champion_pr_auc, champion_version)


def record(
    engine: Engine,
    model_name: str,
    challenger_version: str,
    decision: Decision,
    trigger: str,
    correlation_id: str,
    digest: ArtifactDigest | None = None,
    run_id: str | None = None,
    data_objects: list[str] | None = None,
) -> None:
    """One audit row per decision, with the digest the version's files must match (loaders
    verify against it); a second run for the same version leaves the first row.

    With `run_id`, the training run's row gets the version in the same transaction: the
    decision is on record before the alias moves, so a redelivered trigger finishes this
    promotion (handlers.retrain) instead of training another version.
    """
    values = {
        "model_name": model_name,
        "challenger_version": challenger_version,
        "champion_version": decision.champion_version,
        "challenger_pr_auc": decision.challenger_pr_auc,
        "champion_pr_auc": decision.champion_pr_auc,
        "decision": "promoted" if decision.promote else "rejected",
        "reason": decision.reason,
        "trigger": trigger,
        "correlation_id": correlation_id,
        "decided_at": datetime.now(UTC),
        "artifact_sha256": digest.sha256 if digest else None,
        "artifact_size": digest.size if digest else None,
    }
    insert = sqlite_insert if is_sqlite(engine) else pg_insert
    statement = (
        insert(model_promotions)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["model_name", "challenger_version"])
    )
    with engine.begin() as conn:
        conn.execute(statement)
        if run_id is not None:
            conn.execute(
                update(training_runs)
                .where(training_runs.c.run_id == run_id)
                .values(model_version=challenger_version, data_objects=data_objects or [])
            )


def recorded(engine: Engine, model_name: str, challenger_version: str) -> Decision | None:
    """The decision recorded for a version, as `decide` made it (None when there is none)."""
    query = select(model_promotions).where(
        model_promotions.c.model_name == model_name,
        model_promotions.c.challenger_version == challenger_version,
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return Decision(
        row.decision == "promoted",
        row.reason,
        row.challenger_pr_auc,
        row.champion_pr_auc,
        row.champion_version,
    )
