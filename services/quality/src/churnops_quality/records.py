"""The quality run's rows: one `monitoring.quality_runs` row and its `feature_psi` rows.

Written in one transaction, replacing any rows of the same run id, so a handler that is run
again (a redelivery after a crash) leaves exactly one copy. The report's location is set later by
the report task (`set_report_uri`); a re-run of the check keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update

from churnops_common.db.tables import feature_psi, quality_runs
from churnops_common.events import ObjectRef


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    object: ObjectRef
    kind: str | None
    status: str  # accepted | rejected
    reason: str | None
    rows: int | None
    has_target: bool
    psi: dict[str, float]
    threshold: float
    warnings: list[str]
    details: dict[str, Any]
    report_uri: str | None
    correlation_id: str

    @property
    def max_psi(self) -> float | None:
        return max(self.psi.values(), default=None)


def storable(value: Any) -> Any:
    """`value` with NUL characters made visible: Postgres refuses them in text and JSONB, and
    user data (a header, a column name) may hold one."""
    if isinstance(value, str):
        return value.replace("\x00", "\\0")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def write_run(engine: Engine, record: RunRecord) -> None:
    max_psi = record.max_psi
    with engine.begin() as conn:
        rendered = conn.execute(
            select(quality_runs.c.report_uri).where(quality_runs.c.run_id == record.run_id)
        ).scalar_one_or_none()
        conn.execute(delete(feature_psi).where(feature_psi.c.run_id == record.run_id))
        conn.execute(delete(quality_runs).where(quality_runs.c.run_id == record.run_id))
        conn.execute(
            quality_runs.insert().values(
                run_id=record.run_id,
                bucket=record.object.bucket,
                object_key=record.object.key,
                etag=record.object.etag,
                kind=record.kind,
                status=record.status,
                reason=storable(record.reason),
                rows=record.rows,
                has_target=record.has_target,
                max_psi=max_psi,
                psi_breached=max_psi is not None and max_psi >= record.threshold,
                warnings=storable(record.warnings),
                details=storable(record.details),
                report_uri=record.report_uri or rendered,
                correlation_id=record.correlation_id,
                created_at=datetime.now(UTC),
            )
        )
        if record.psi:
            conn.execute(
                feature_psi.insert(),
                [
                    {
                        "run_id": record.run_id,
                        "feature": storable(name),
                        "psi": value,
                        "breached": value >= record.threshold,
                    }
                    for name, value in record.psi.items()
                ],
            )


def set_report_uri(engine: Engine, run_id: str, uri: str) -> bool:
    """Record where a run's report is; False when the run is not there (nothing to update)."""
    with engine.begin() as conn:
        result = conn.execute(
            update(quality_runs).where(quality_runs.c.run_id == run_id).values(report_uri=uri)
        )
    return bool(result.rowcount)


def baseline_versions_checked(
    engine: Engine, ref: ObjectRef, exclude_run_id: str
) -> set[int | None]:
    """The baseline versions other runs already checked `bucket/key@etag` against (None: no
    baseline then, or a run recorded before the version was kept in `details`)."""
    query = select(quality_runs.c.details).where(
        quality_runs.c.bucket == ref.bucket,
        quality_runs.c.object_key == ref.key,
        quality_runs.c.etag == ref.etag,
        quality_runs.c.run_id != exclude_run_id,
    )
    with engine.connect() as conn:
        details = conn.execute(query).scalars().all()
    found: set[int | None] = set()
    for detail in details:
        version = detail.get("baseline_version") if isinstance(detail, dict) else None
        found.add(int(version) if version is not None else None)
    return found
