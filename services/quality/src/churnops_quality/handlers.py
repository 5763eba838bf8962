"""Handlers of the quality service: plain functions, event in, follow-up events out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Never

from churnops_common.events import (
    DataLanded,
    Event,
    ModelPromoted,
    QualityReportRequested,
    QualityRequested,
    SweepRequested,
)
from churnops_common.handling import expect, handlers_of
from churnops_common.routing import QUALITY
from churnops_common.runtime import Runtime
from churnops_quality.prune import prune
from churnops_quality.recheck_batch import recheck
from churnops_quality.refresh import refresh_baseline
from churnops_quality.sweep import sweep
from churnops_quality.validate_batch import QualityFollowup, validate_landed

log = logging.getLogger(__name__)


def on_data_landed(event: Event, runtime: Runtime) -> Sequence[QualityFollowup]:
    """A landed file: check it against the baseline, record the run, announce the verdict."""
    return validate_landed(runtime, expect(event, DataLanded))


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
    """Re-check the named object (or the newest new_data object) against the current baseline."""
    return recheck(runtime, expect(event, QualityRequested))


def on_quality_report_requested(event: Event, runtime: Runtime) -> Sequence[Never]:
    """The report of a run whose verdict has already gone out (people read it; no event waits)."""
    # Imported here: the report's stack (Evidently, plotting, PDF) costs seconds to import,
    # which the verdict (and a command waiting for it) never needs.
    from churnops_quality.evidence import render_report

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
