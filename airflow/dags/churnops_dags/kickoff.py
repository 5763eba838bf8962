"""Kickoff: publish one scheduled event per DAG run, once, and read back how its handling went.

The event's ids come from the DAG run (`Event.start_chain(chain_key="<dag_id>/<run_id>")`), so
every try of the publishing task builds the same event. Before publishing, two records say
whether an earlier try already did:

1. a Redis marker `churnops:airflow:published:<event_id>`, written right after the publish
   (covers the window where the message waits in the queue and no handler has seen it yet);
2. the processed-events ledger and the dead letters in the monitoring database (cover a run
   re-run after the marker expired, or a Redis that lost its data).

A crash between the publish and the marker means the next try publishes again: delivery stays
at least once, and the subscriber's ledger drops the second copy (same event id).

Celery, redis, SQLAlchemy and the shared package are imported inside the functions: the DAG
processor imports the DAG files, and through them this module, every few seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from churnops_common.events import Event
    from churnops_common.settings import Settings

log = logging.getLogger(__name__)

MARKER_PREFIX = "churnops:airflow:published:"
# Longer than the longest schedule (monthly): a retry or re-run within it is caught here; older
# re-runs are caught by the ledger.
MARKER_TTL_S = 40 * 24 * 3600
PRODUCER_APP_NAME = "churnops-airflow"

Verdict = Literal["waiting", "done", "failed"]


def platform_settings() -> Settings:
    """The platform's settings from the environment (REDIS_URL, POSTGRES_* or MONITORING_DB_URL).

    Not `get_settings().check()`: that also demands the MinIO secrets, which Airflow never uses.
    Embedded mode would silently read a local SQLite ledger that no worker writes to, and every
    wait would time out: refuse it with what to set instead.
    """
    from churnops_common.settings import ConfigError, Settings

    settings = Settings()
    if not settings.is_stack and not settings.monitoring_db_url:
        raise ConfigError(
            "Airflow needs the stack's ledger: set CHURNOPS_MODE=stack with POSTGRES_HOST,"
            " POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB (or MONITORING_DB_URL), and REDIS_URL"
        )
    return settings


def chain_key(dag_id: str, run_id: str, discriminator: str = "") -> str:
    """One chain per DAG run, or per item of a run that publishes several (dag_ingest)."""
    return f"{dag_id}/{run_id}/{discriminator}" if discriminator else f"{dag_id}/{run_id}"


def build_event(
    event_type: str,
    dag_id: str,
    run_id: str,
    fields: Mapping[str, Any],
    discriminator: str = "",
) -> Event:
    """The kickoff event of one DAG run (and item): the same ids on every try of that run."""
    from churnops_common.events import EVENT_TYPES

    try:
        event_cls = EVENT_TYPES[event_type]
    except KeyError:
        raise ValueError(f"unknown event type {event_type!r}") from None
    return event_cls.start_chain(chain_key=chain_key(dag_id, run_id, discriminator), **dict(fields))


@dataclass(frozen=True)
class Publication:
    """What the publishing task did; its dict form is the task's XCom, read by the wait."""

    event_type: str
    event_id: str
    correlation_id: str
    task_names: list[str]
    published: bool
    reason: str

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> Publication:
        return cls(
            event_type=str(value["event_type"]),
            event_id=str(value["event_id"]),
            correlation_id=str(value["correlation_id"]),
            task_names=[str(name) for name in value["task_names"]],
            published=bool(value["published"]),
            reason=str(value["reason"]),
        )


def subscriber_tasks(event_type: str) -> list[str]:
    from churnops_common.routing import subscriptions_for

    names = [sub.task_name for sub in subscriptions_for(event_type)]
    if not names:
        raise ValueError(f"no subscriber for {event_type} in the routing table: nothing would run")
    return names


def publish_once(event: Event, settings: Settings) -> Publication:
    """Publish `event` to its subscribers unless an earlier try of this DAG run already did."""
    import redis

    from churnops_common.db.engine import make_engine

    tasks = subscriber_tasks(event.event_type)

    def result(published: bool, reason: str) -> Publication:
        return Publication(
            event.event_type, event.event_id, event.correlation_id, tasks, published, reason
        )

    engine = make_engine(settings.monitoring_url())
    try:
        if ledger_has(engine, event.correlation_id, event.event_id):
            return result(False, "a handler already recorded this event in the ledger")
    finally:
        engine.dispose()

    client = redis.Redis.from_url(settings.redis_url)
    try:
        marker = MARKER_PREFIX + event.event_id
        if client.exists(marker):
            return result(False, "an earlier try of this DAG run already published it")
        _send(event, settings)
        client.set(marker, event.occurred_at.isoformat(), ex=MARKER_TTL_S)
    finally:
        client.close()
    return result(True, f"published to {', '.join(tasks)}")


def _send(event: Event, settings: Settings) -> None:
    from churnops_common.bus.celery_bus import CeleryBus
    from churnops_common.celery_app import make_celery

    app = make_celery(PRODUCER_APP_NAME, settings)
    try:
        CeleryBus(app).publish(event)
    finally:
        app.close()


def ledger_has(engine: Engine, correlation_id: str, event_id: str) -> bool:
    """Whether any handler claimed, finished or dead-lettered this event.

    Filtering on the (indexed) correlation id too keeps this cheap on a long ledger.
    """
    from sqlalchemy import exists, select

    from churnops_common.db.tables import dead_letters, processed_events

    events, dead = processed_events.c, dead_letters.c
    with engine.connect() as conn:
        return bool(
            conn.execute(
                select(
                    exists().where(
                        events.correlation_id == correlation_id, events.event_id == event_id
                    )
                    | exists().where(
                        dead.correlation_id == correlation_id, dead.event_id == event_id
                    )
                )
            ).scalar()
        )


@dataclass(frozen=True)
class KickoffState:
    """How the subscribers of one kickoff event are doing, and the chain it started."""

    verdict: Verdict
    handlers: dict[str, str]  # task name -> ledger status, or "pending" before any claim
    errors: dict[str, str] = field(default_factory=dict)  # task name -> dead-letter reason
    chain: dict[str, int] = field(default_factory=dict)  # Ledger.outcome(correlation_id)

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        handlers = ", ".join(f"{task}={status}" for task, status in self.handlers.items())
        chain = ", ".join(f"{status}={n}" for status, n in sorted(self.chain.items()))
        return f"{self.verdict}: {handlers}; chain so far: {chain or 'nothing recorded'}"


def judge(
    task_names: Sequence[str], statuses: Mapping[str, str], dead: Mapping[str, str]
) -> Verdict:
    """Done when every subscriber finished; failed when one was dead-lettered and not since redone.

    A `failed` ledger row without a dead letter is a transient failure whose retry is pending.
    """
    if any(statuses.get(task) != "done" and task in dead for task in task_names):
        return "failed"
    if all(statuses.get(task) == "done" for task in task_names):
        return "done"
    return "waiting"


def read_state(engine: Engine, publication: Publication) -> KickoffState:
    """The ledger rows and dead letters of the kickoff event, and the outcome of its chain."""
    from sqlalchemy import select

    from churnops_common.db.ledger import Ledger
    from churnops_common.db.tables import dead_letters, processed_events

    with engine.connect() as conn:
        statuses = {
            row.task_name: row.status
            for row in conn.execute(
                select(processed_events.c.task_name, processed_events.c.status).where(
                    processed_events.c.correlation_id == publication.correlation_id,
                    processed_events.c.event_id == publication.event_id,
                )
            )
        }
        dead = {
            row.task_name: row.error
            for row in conn.execute(
                select(dead_letters.c.task_name, dead_letters.c.error)
                .where(
                    dead_letters.c.correlation_id == publication.correlation_id,
                    dead_letters.c.event_id == publication.event_id,
                )
                .order_by(dead_letters.c.created_at)
            )
        }
    tasks = publication.task_names
    return KickoffState(
        verdict=judge(tasks, statuses, dead),
        handlers={task: statuses.get(task, "pending") for task in tasks},
        errors={task: dead[task] for task in tasks if task in dead},
        chain=Ledger(engine).outcome(publication.correlation_id),
    )


def check_outcome(publication: Publication, settings: Settings) -> KickoffState:
    from churnops_common.db.engine import make_engine

    engine = make_engine(settings.monitoring_url())
    try:
        return read_state(engine, publication)
    finally:
        engine.dispose()
