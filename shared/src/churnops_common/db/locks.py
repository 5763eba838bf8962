"""Postgres session advisory locks on text keys: held by one connection, freed if it dies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


def lock_id(*parts: str) -> int:
    """The signed 64-bit lock number of a key (the same on every machine)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def advisory_lock(engine: Engine, key: int, *, wait: bool) -> Iterator[bool]:
    """Yield True while this process holds the lock; False when another holds it (no wait).

    A session lock on a dedicated connection: a worker killed while holding it loses the
    connection, and Postgres frees the lock for the next delivery.
    """
    with engine.connect() as conn:
        if wait:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": key})
            held = True
        else:
            held = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": key}).scalar()
            )
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": key})
                conn.commit()
