"""Baseline refresh after a promotion: the new champion's training data becomes the reference."""

from __future__ import annotations

import logging

from churnops_common.errors import PermanentError
from churnops_common.events import ObjectRef
from churnops_common.runtime import Runtime
from churnops_quality.baseline import build_baseline, current_version, save_baseline
from churnops_quality.reading import FileProblem, precheck, read_whole

log = logging.getLogger(__name__)


def refresh_baseline(runtime: Runtime, data: ObjectRef) -> int | None:
    """Build and save a new baseline version from `data`; returns its version, or None when
    the current baseline already comes from exactly this object (a repeated promotion)."""
    settings, store = runtime.settings, runtime.store
    current = current_version(store, settings)
    if current is not None and current[1] == data.versioned_uri:
        log.info("baseline v%d already built from %s", current[0], data.versioned_uri)
        return None
    if store.stat(data.bucket, data.key) is None:
        raise PermanentError(f"training data {data.uri} does not exist: baseline kept")
    with store.local_path(data.bucket, data.key) as path:
        try:
            facts = precheck(path, int(settings.quality_max_file_mb * 2**20), settings.id_column)
            frame = read_whole(path, facts, settings.id_column)
        except FileProblem as problem:
            raise PermanentError(f"training data {data.uri}: {problem.reason}") from None
    version = 1 if current is None else current[0] + 1
    baseline, sample = build_baseline(frame, settings, data.versioned_uri, version)
    save_baseline(store, settings, baseline, sample)
    return version
