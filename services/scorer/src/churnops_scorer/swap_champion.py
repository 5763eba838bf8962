"""A model was promoted: serve the champion the registry alias names (the alias, not the event,
decides), and with SCORER_RESCORE_ON_PROMOTION rescore the latest batch with it.

The loaded model is cached per worker process (`models`); the swap is the cache noticing the
alias moved. Rescoring reuses the batch flow, so its run is recorded and announced like any.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from churnops_common.events import Event, ModelPromoted, ObjectRef, ScoreChunkRequested
from churnops_common.runtime import Runtime
from churnops_scorer import records
from churnops_scorer.followups import Announcement
from churnops_scorer.models import NoChampion, champion, champion_version
from churnops_scorer.score_batch import score_batch

log = logging.getLogger(__name__)


def swap_champion(
    runtime: Runtime, event: ModelPromoted
) -> Sequence[Announcement | ScoreChunkRequested]:
    """Swap to the new champion (by the registry alias only); maybe rescore the latest batch."""
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
