"""The processed-events ledger: each (task, idempotency key) has its effects once.

`claim()` is the guard around a handler. On Postgres a session-level advisory lock on the key
keeps two deliveries of the same work from running at once; the lock dies with the connection,
so a worker killed mid-task frees the key for the redelivery. A `done` row means "already
handled": later deliveries are acknowledged and dropped.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from churnops_common.db.engine import is_sqlite
from churnops_common.db.inserts import insert_for
from churnops_common.db.locks import advisory_lock, lock_id
from churnops_common.db.tables import dead_letters, processed_events
from churnops_common.events import Event

# Deliveries that may die mid-task (worker killed) before the message is parked as poison.
MAX_CRASHES = 3


@dataclass
class Claim:
    """The right to run one handler for one key. `acquired` is False when it must be skipped."""

    acquired: bool
    why_not: str = ""
    followups: int = field(default=0)
    poisoned: bool = False  # the message killed its worker too often: park it, do not run it


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def claim(self, task_name: str, event: Event) -> Iterator[Claim]:
        """Yield a Claim; on normal exit mark the row done, on an exception mark it failed."""
        key = event.idempotency_key
        with self._exclusive(task_name, key) as locked:
            if not locked:
                yield Claim(False, "another worker is handling this key right now")
                return
            status, attempts = self._status(task_name, key)
            if status == "done":
                yield Claim(False, "already handled")
                return
            if status == "running" and attempts >= MAX_CRASHES:
                # Still 'running' with the lock free: every earlier attempt died mid-task (an
                # OOM kill, a segfault). Running it again would only kill this worker too.
                why = f"the worker died {attempts} times while handling it"
                self._finish(task_name, key, "done", 0, f"parked: {why}")
                yield Claim(False, why, poisoned=True)
                return
            self._start(task_name, key, event)
            claim = Claim(True)
            try:
                yield claim
            except BaseException as exc:
                self._finish(task_name, key, "failed", claim.followups, _short_error(exc))
                raise
            self._finish(task_name, key, "done", claim.followups, None)

    @contextmanager
    def _exclusive(self, task_name: str, key: str) -> Iterator[bool]:
        if is_sqlite(self.engine):  # embedded mode: one process, one handler at a time
            yield True
            return
        with advisory_lock(self.engine, lock_id(task_name, key), wait=False) as locked:
            yield locked

    def _status(self, task_name: str, key: str) -> tuple[str | None, int]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(processed_events.c.status, processed_events.c.attempts).where(
                    processed_events.c.task_name == task_name,
                    processed_events.c.idempotency_key == key,
                )
            ).one_or_none()
        return (None, 0) if row is None else (row.status, int(row.attempts))

    def forget(self, task_name: str, key: str) -> None:
        """Drop a task's record of a key, so a replayed event is handled again."""
        with self.engine.begin() as conn:
            conn.execute(
                processed_events.delete().where(
                    processed_events.c.task_name == task_name,
                    processed_events.c.idempotency_key == key,
                )
            )

    def _start(self, task_name: str, key: str, event: Event) -> None:
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "task_name": task_name,
            "idempotency_key": key,
            "event_id": event.event_id,
            "event_type": event.event_type,
            "correlation_id": event.correlation_id,
            "status": "running",
            "attempts": 1,
            "followups": 0,
            "started_at": now,
        }
        with self.engine.begin() as conn:
            stmt = insert_for(self.engine, processed_events).values(**values)
            stmt = stmt.on_conflict_do_update(
                index_elements=["task_name", "idempotency_key"],
                set_={
                    "status": "running",
                    "attempts": processed_events.c.attempts + 1,
                    "started_at": now,
                    "error": None,
                },
            )
            conn.execute(stmt)

    def _finish(
        self, task_name: str, key: str, status: str, followups: int, error: str | None
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(processed_events)
                .where(
                    processed_events.c.task_name == task_name,
                    processed_events.c.idempotency_key == key,
                )
                .values(
                    status=status, followups=followups, error=error, finished_at=datetime.now(UTC)
                )
            )

    def dead_letter(
        self,
        task_name: str,
        payload: Any,
        error: str,
        *,
        event: Event | None = None,
        attempts: int = 1,
    ) -> None:
        """Park a message that will never succeed as it is, with the reason, for an operator."""
        text_payload = payload if isinstance(payload, str) else json.dumps(payload, default=str)
        with self.engine.begin() as conn:
            conn.execute(
                dead_letters.insert().values(
                    task_name=task_name,
                    event_id=event.event_id if event else _payload_field(payload, "event_id"),
                    correlation_id=event.correlation_id
                    if event
                    else _payload_field(payload, "correlation_id"),
                    payload=text_payload,
                    error=error,
                    attempts=attempts,
                    created_at=datetime.now(UTC),
                )
            )

    def outcome(self, correlation_id: str) -> dict[str, int]:
        """Counts of ledger statuses (and dead letters) for one chain: what Airflow waits on."""
        with self.engine.connect() as conn:
            counts = {
                row.status: int(row.n)
                for row in conn.execute(
                    select(processed_events.c.status, func.count().label("n"))
                    .where(processed_events.c.correlation_id == correlation_id)
                    .group_by(processed_events.c.status)
                )
            }
            counts["dead_letters"] = int(
                conn.execute(
                    select(func.count())
                    .select_from(dead_letters)
                    .where(dead_letters.c.correlation_id == correlation_id)
                ).scalar_one()
            )
        return counts

    def done_among(self, conn: Connection, task_name: str, keys: list[str]) -> set[str]:
        """Which of `keys` the task has finished: the sweep asks page by page, so its memory
        follows one page of the listing, not the whole ledger."""
        if not keys:
            return set()
        rows = conn.execute(
            select(processed_events.c.idempotency_key).where(
                processed_events.c.task_name == task_name,
                processed_events.c.status == "done",
                processed_events.c.idempotency_key.in_(keys),
            )
        )
        return {row[0] for row in rows}


def _payload_field(payload: Any, name: str) -> str | None:
    if isinstance(payload, dict):
        value = payload.get(name)
        return str(value) if value is not None else None
    return None


def _short_error(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()[:2000]
