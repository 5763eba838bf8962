"""Handlers of the quality service: plain functions, event in, follow-up events out."""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from typing import Never

from churnops_common.bridge import KIND_PREFIXES
from churnops_common.events import (
    DataKind,
    DataLanded,
    Event,
    ModelPromoted,
    ObjectRef,
    QualityReportRequested,
    QualityRequested,
    SweepRequested,
    stable_id,
)
from churnops_common.handling import expect, handlers_of
from churnops_common.routing import QUALITY
from churnops_common.runtime import Runtime
from churnops_common.storage import InvalidObjectKey
from churnops_quality.baseline import current_version
from churnops_quality.evidence import render_report
from churnops_quality.prune import prune
from churnops_quality.records import baseline_versions_checked
from churnops_quality.refresh import refresh_baseline
from churnops_quality.sweep import sweep
from churnops_quality.validate_batch import (
    QualityFollowup,
    followups,
    record_unstorable,
    run_quality,
)

log = logging.getLogger(__name__)


def run_id_for(*parts: str) -> str:
    """A quality run id fixed by what is checked: a redelivery rewrites the same run."""
    return "q-" + str(stable_id("quality-run", *parts))[:18]


def on_data_landed(event: Event, runtime: Runtime) -> Sequence[QualityFollowup]:
    event = expect(event, DataLanded)
    run_id = run_id_for(event.idempotency_key)
    try:
        outcome = run_quality(runtime, event.object, event.kind, run_id, event.correlation_id)
    except Exception as exc:
        why = unstorable(exc)
        if why is None:
            raise
        outcome = record_unstorable(
            runtime, event.object, event.kind, run_id, event.correlation_id, why
        )
    return followups(event, outcome)


def unstorable(exc: BaseException) -> str | None:
    """Why a store refuses this file's data for good (None: another kind of error): the
    database refusing a value, a name the file system cannot hold, an invalid key."""
    from sqlalchemy.exc import DataError

    if isinstance(exc, DataError):
        return f"the database refused a value: {str(exc.orig).splitlines()[0][:300]}"
    if isinstance(exc, OSError) and exc.errno in (errno.ENAMETOOLONG, errno.EILSEQ):
        return f"the file system refused a name: {exc.strerror}"
    if isinstance(exc, InvalidObjectKey):
        return str(exc)
    return None


def on_sweep_requested(event: Event, runtime: Runtime) -> Sequence[DataLanded]:
    event = expect(event, SweepRequested)
    prune(runtime)  # the daily sweep is also the daily prune
    found = sweep(event, runtime)
    log.info(
        "sweep%s: %d unprocessed landed object(s)",
        f" of {event.prefix!r}" if event.prefix else "",
        len(found),
    )
    return found


def on_quality_requested(event: Event, runtime: Runtime) -> Sequence[QualityFollowup]:
    """Re-check the named object, or the newest new_data object, against the current baseline.

    The same file against the same baseline gives the same answer: when another run already
    did that, nothing is run, recorded or emitted (the daily request would otherwise re-raise
    the same PsiBreached every day). A baseline refreshed since then makes it a real re-check:
    recorded as its own run marked `recheck`, with PsiBreached when it breaches, but no second
    DataValidated. A retry of this same request redoes its own run (same run id, same event
    ids), so a follow-up lost to a failed publish is sent again.
    """
    event = expect(event, QualityRequested)
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


def on_quality_report_requested(event: Event, runtime: Runtime) -> Sequence[Never]:
    """The report of a run whose verdict has already gone out (people read it; no event waits)."""
    event = expect(event, QualityReportRequested)
    uri = render_report(runtime, event)
    log.info("report of quality run %s: %s", event.quality_run_id, uri or "not rendered")
    return []


def on_model_promoted(event: Event, runtime: Runtime) -> Sequence[Never]:
    event = expect(event, ModelPromoted)
    if event.training_data is None:
        log.info(
            "model %s v%s promoted without training_data: baseline kept",
            event.model_name,
            event.model_version,
        )
        return []
    refresh_baseline(runtime, event.training_data, event.model_version)
    return []


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


HANDLERS = handlers_of(
    QUALITY,
    {
        DataLanded: on_data_landed,
        SweepRequested: on_sweep_requested,
        QualityRequested: on_quality_requested,
        QualityReportRequested: on_quality_report_requested,
        ModelPromoted: on_model_promoted,
    },
)
