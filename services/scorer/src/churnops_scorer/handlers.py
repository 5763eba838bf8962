"""Handlers of the scorer service: plain functions, event in, follow-up events out."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from churnops_common.events import (
    DataValidated,
    Event,
    ModelPromoted,
    ObjectRef,
    ScoreChunkRequested,
)
from churnops_common.handling import expect, handlers_of
from churnops_common.routing import SCORER
from churnops_common.runtime import Runtime
from churnops_scorer import records
from churnops_scorer.followups import Announcement
from churnops_scorer.models import NoChampion, champion, champion_version
from churnops_scorer.score_batch import score_batch
from churnops_scorer.score_chunk import score_chunk

log = logging.getLogger(__name__)


def on_data_validated(
    event: Event, runtime: Runtime
) -> Sequence[Announcement | ScoreChunkRequested]:
    """A validated new_data batch: score it with the champion."""
    event = expect(event, DataValidated)
    runtime = runtime.under_contract()  # the model's data contract names ids and targets
    if event.kind != "new_data":
        return []
    try:
        model = champion(runtime)
    except NoChampion as exc:
        log.warning(
            "%s not scored: %s (it is scored when a model is promoted and"
            " SCORER_RESCORE_ON_PROMOTION rescoring reaches it, or when re-dropped)",
            event.object.uri,
            exc,
        )
        return []
    return score_batch(runtime, event.object, model, event, rows_hint=event.rows)


def on_model_promoted(
    event: Event, runtime: Runtime
) -> Sequence[Announcement | ScoreChunkRequested]:
    """Swap to the new champion (by the registry alias only); maybe rescore the latest batch."""
    event = expect(event, ModelPromoted)
    runtime = runtime.under_contract()  # the model's data contract names ids and targets
    settings = runtime.settings
    if event.model_name != settings.mlflow_model_name:
        log.warning(
            "ignoring promotion of %r: this scorer serves %r",
            event.model_name,
            settings.mlflow_model_name,
        )
        return []
    current = champion_version(settings)
    if current != event.model_version:
        # The alias moved again (or back) since this event: the alias, not the event, decides.
        log.warning(
            "promotion of v%s, but the champion alias names v%s: using the alias",
            event.model_version,
            current,
        )
    try:
        model = champion(runtime)
    except NoChampion as exc:
        log.warning("promotion event, but %s", exc)
        return []
    if not settings.scorer_rescore_on_promotion:
        return []
    return rescore_latest(runtime, event, model.version)


def rescore_latest(
    runtime: Runtime, event: Event, version: str
) -> Sequence[Announcement | ScoreChunkRequested]:
    last = records.latest_run(runtime.engine, runtime.settings.mlflow_model_name)
    if last is None or last.model_version == version:
        return []
    stat = runtime.store.stat(last.input_bucket, last.input_key)
    if stat is None or stat.etag != last.input_etag:
        log.info(
            "latest batch s3://%s/%s changed or vanished since it was scored: not rescored",
            last.input_bucket,
            last.input_key,
        )
        return []
    ref = ObjectRef(
        bucket=last.input_bucket, key=last.input_key, etag=last.input_etag, size=stat.size
    )
    log.info("rescoring %s with the new champion v%s", ref.uri, version)
    return score_batch(runtime, ref, champion(runtime), event, rows_hint=int(last.rows))


def on_score_chunk_requested(event: Event, runtime: Runtime) -> Sequence[Announcement]:
    """One chunk of a large batch; the last chunk to finish assembles the output."""
    event = expect(event, ScoreChunkRequested)
    runtime = runtime.under_contract()  # the model's data contract names ids and targets
    return score_chunk(runtime, event)


HANDLERS = handlers_of(
    SCORER,
    {
        DataValidated: on_data_validated,
        ModelPromoted: on_model_promoted,
        ScoreChunkRequested: on_score_chunk_requested,
    },
)
