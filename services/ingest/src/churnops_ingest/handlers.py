"""Handlers of the ingest service: plain functions, event in, follow-up events out."""

from __future__ import annotations

from collections.abc import Sequence

from churnops_common.events import DataLanded, Event, IngestRequested
from churnops_common.handling import expect, handlers_of
from churnops_common.routing import INGEST
from churnops_common.runtime import Runtime
from churnops_ingest.ingest_source import ingest, landed_event
from churnops_ingest.sources import find_source


def on_ingest_requested(event: Event, runtime: Runtime) -> Sequence[DataLanded]:
    """Land the named source's snapshot for the logical date and announce it.

    In the stack MinIO announces the object too; quality's ledger keeps one of the two. A re-run
    announces the same object again, which is dropped the same way (or, if the first announcement
    was lost, starts its processing now).
    """
    event = expect(event, IngestRequested)
    settings = runtime.settings
    source = find_source(settings.ingest_sources_file, event.source)
    result = ingest(runtime.store, settings, event.source, source, event.logical_date)
    return [landed_event(result, cause=event)]


HANDLERS = handlers_of(INGEST, {IngestRequested: on_ingest_requested})
