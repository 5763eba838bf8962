"""One training of a model at a time.

A Postgres session advisory lock in stack mode (it dies with the connection, so a killed worker
frees it) and an OS file lock in embedded mode (it dies with the process).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from churnops_common.db.engine import is_sqlite
from churnops_common.db.locks import advisory_lock, lock_id
from churnops_common.settings import Settings


@contextmanager
def training_lock(engine: Engine, settings: Settings, *, wait: bool) -> Iterator[bool]:
    """Yield True while this process holds the model's training lock (False: someone else)."""
    if is_sqlite(engine):
        with _file_lock(settings, wait=wait) as held:
            yield held
        return
    key = lock_id("churnops-training", settings.mlflow_model_name)
    with advisory_lock(engine, key, wait=wait) as held:
        yield held


@contextmanager
def _file_lock(settings: Settings, *, wait: bool) -> Iterator[bool]:
    settings.churnops_home.mkdir(parents=True, exist_ok=True)
    path = settings.churnops_home / f"training-{settings.mlflow_model_name}.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
