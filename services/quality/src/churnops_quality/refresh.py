"""Baseline refresh after a promotion: the new champion's training data becomes the reference.

Promotions can arrive late or be handled by two workers at once. A refresh is therefore a
compare-and-set on the model version recorded in the baseline pointer: it goes ahead only for
a model newer than the one the current baseline came from, and the compare and the write run
under one lock (a Postgres advisory lock in stack mode; a process lock on SQLite, where every
handler runs in one process), so an older model's data can never replace a newer one's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from churnops_common.db.engine import is_sqlite
from churnops_common.errors import PermanentError
from churnops_common.events import ObjectRef
from churnops_common.runtime import Runtime
from churnops_quality.baseline import (
    Baseline,
    Pointer,
    build_baseline,
    current_pointer,
    load_baseline,
    save_baseline,
)
from churnops_quality.reading import FileLimits, FileProblem, precheck, read_whole

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# An arbitrary constant naming the baseline's advisory lock (distinct from the migrations').
_BASELINE_LOCK_ID = 7_301_994_101
_LOCAL_LOCK = threading.Lock()


@contextmanager
def baseline_lock(engine: Engine) -> Iterator[None]:
    """Held while a refresh compares the pointer and writes a new baseline."""
    if is_sqlite(engine):
        with _LOCAL_LOCK:
            yield
        return
    with engine.begin() as conn:  # the lock ends with this transaction
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _BASELINE_LOCK_ID})
        yield


def save_first_baseline(runtime: Runtime, baseline: Baseline, sample: pd.DataFrame) -> Baseline:
    """Write the first baseline only if there still is none, under the baseline lock: two
    training sets accepted at once must not interleave their files into one mixed v1. The
    loser keeps the winner's baseline."""
    settings, store = runtime.settings, runtime.store
    with baseline_lock(runtime.engine):
        if current_pointer(store, settings) is None:
            save_baseline(store, settings, baseline, sample)
            return baseline
    existing = load_baseline(store, settings, runtime.cache)
    assert existing is not None  # a pointer exists and baselines are never deleted
    log.info("baseline v%d was created meanwhile from %s: kept", existing.version, existing.source)
    return existing


def model_number(version: str) -> int:
    """MLflow registry versions are integers; anything else cannot be ordered."""
    try:
        return int(version)
    except ValueError:
        raise PermanentError(
            f"model version {version!r} is not a registry version number"
        ) from None


def is_newer(model_version: str, pointer: Pointer | None) -> bool:
    """True when `model_version` should replace what the current baseline was built from."""
    if pointer is None or pointer.model_version is None:
        return True  # no baseline, or one from a landed training set (no model behind it)
    return model_number(model_version) > model_number(pointer.model_version)


def refresh_baseline(runtime: Runtime, data: ObjectRef, model_version: str) -> int | None:
    """Build and save a new baseline version from `data`, the training data of the promoted
    `model_version`; returns its version, or None when it was not replaced: the current
    baseline comes from the same or a newer model, or already from exactly this object."""
    runtime = runtime.under_contract()  # the model's data contract names ids and targets
    settings, store = runtime.settings, runtime.store
    model_number(model_version)  # a malformed version fails before any work
    with baseline_lock(runtime.engine):
        pointer = current_pointer(store, settings)
        if not is_newer(model_version, pointer):
            assert pointer is not None
            log.warning(
                "baseline v%d comes from model v%s: the older (or same) promotion of v%s is"
                " ignored",
                pointer.version,
                pointer.model_version,
                model_version,
            )
            return None
        if pointer is not None and pointer.source == data.versioned_uri:
            log.info("baseline v%d already built from %s", pointer.version, data.versioned_uri)
            return None
        frame = _read(runtime, data)
        version = 1 if pointer is None else pointer.version + 1
        baseline, sample = build_baseline(
            frame, settings, data.versioned_uri, version, model_version=model_version
        )
        save_baseline(store, settings, baseline, sample)
        return version


def _read(runtime: Runtime, data: ObjectRef) -> pd.DataFrame:
    settings, store = runtime.settings, runtime.store
    if store.stat(data.bucket, data.key) is None:
        raise PermanentError(f"training data {data.uri} does not exist: baseline kept")
    with store.local_path(data.bucket, data.key, etag=data.etag or None) as path:
        try:
            facts = precheck(path, FileLimits.from_settings(settings), settings.id_column)
            return read_whole(path, facts, settings.id_column)
        except FileProblem as problem:
            raise PermanentError(f"training data {data.uri}: {problem.reason}") from None
