"""Handlers of the scorer service: plain functions, event in, follow-up events out."""

from __future__ import annotations

from collections.abc import Sequence

from churnops_common.events import (
    DataValidated,
    Event,
    ModelPromoted,
    ScoreChunkRequested,
)
from churnops_common.handling import expect, handlers_of
from churnops_common.routing import SCORER
from churnops_common.runtime import Runtime
from churnops_scorer.followups import Announcement
from churnops_scorer.score_batch import score_validated
from churnops_scorer.score_chunk import score_chunk
from churnops_scorer.swap_champion import swap_champion


def on_data_validated(
    event: Event, runtime: Runtime
) -> Sequence[Announcement | ScoreChunkRequested]:
    """A validated batch: new data is scored with the champion (labels are the monitor's, a
    training set the trainer's)."""
    validated = expect(event, DataValidated)
    if validated.kind != "new_data":
        return []
    return score_validated(runtime.under_contract(), validated)


def on_model_promoted(
    event: Event, runtime: Runtime
) -> Sequence[Announcement | ScoreChunkRequested]:
    """Swap to the new champion (by the registry alias only); maybe rescore the latest batch."""
    return swap_champion(runtime.under_contract(), expect(event, ModelPromoted))


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
