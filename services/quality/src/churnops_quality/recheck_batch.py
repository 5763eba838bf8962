"""A re-check on request: the named object, or the newest new_data object, against the current
baseline (the daily data-quality DAG asks for it)."""

from __future__ import annotations

import logging

from churnops_common.bridge import KIND_PREFIXES
from churnops_common.events import DataKind, ObjectRef, QualityRequested
from churnops_common.runtime import Runtime
from churnops_quality.baseline import current_version
from churnops_quality.records import baseline_versions_checked
from churnops_quality.validate_batch import QualityFollowup, followups, run_id_for, run_quality

log = logging.getLogger(__name__)


def recheck(runtime: Runtime, event: QualityRequested) -> list[QualityFollowup]:
    """Re-check the named object, or the newest new_data object, against the current baseline.

    The same file against the same baseline gives the same answer: when another run already
    did that, nothing is run, recorded or emitted (the daily request would otherwise re-raise
    the same PsiBreached every day). A baseline refreshed since then makes it a real re-check:
    recorded as its own run marked `recheck`, with PsiBreached when it breaches, but no second
    DataValidated. A retry of this same request redoes its own run (same run id, same event
    ids), so a follow-up lost to a failed publish is sent again.
    """
    target = event.object or _latest(runtime)
    if target is None:
        log.info("quality requested, but no new_data has landed yet")
        return []
    run_id = run_id_for(event.event_id, target.versioned_uri)
    current = current_version(runtime.store, runtime.settings)
    version = current[0] if current else None
    if version in baseline_versions_checked(runtime.engine, target, exclude_run_id=run_id):
        log.info(
            "%s was already checked against baseline %s: not re-checked",
            target.versioned_uri,
            f"v{version}" if version else "(none)",
        )
        return []
    outcome = run_quality(
        runtime, target, _kind_of(target.key), run_id, event.correlation_id, recheck=True
    )
    return followups(event, outcome, announce=False)


def _latest(runtime: Runtime) -> ObjectRef | None:
    objects = list(runtime.store.list_objects(runtime.settings.minio_landing_bucket, "new_data/"))
    if not objects:
        return None
    newest = max(objects, key=lambda o: (o.last_modified is not None, o.last_modified, o.key))
    return ObjectRef(bucket=newest.bucket, key=newest.key, etag=newest.etag, size=newest.size)


def _kind_of(key: str) -> DataKind:
    for prefix, kind in KIND_PREFIXES.items():
        if key.startswith(prefix):
            return kind
    return "new_data"
