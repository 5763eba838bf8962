"""A warehouse query, streamed: a server-side cursor hands over `batch_rows` rows at a time.

Any SQLAlchemy URL works; the driver is the only thing a warehouse needs installed (Postgres'
psycopg ships with the platform; Snowflake, BigQuery, Redshift, DuckDB plug in through their
SQLAlchemy dialects). Where a driver has no server-side cursors, SQLAlchemy falls back to
fetching in batches from a client-side one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from churnops_common.errors import PermanentError, TransientError
from churnops_ingest.snapshot import arrow_batch
from churnops_ingest.sources import redacted

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10


class SourceUnreachable(TransientError):
    """The database (or API) did not answer: worth retrying later."""


class QueryFailed(PermanentError):
    """The database answered and refused the query: the same query fails the same way."""


def query_batches(
    url: str, query: str, logical_date: date, batch_rows: int, source: str
) -> Iterator[pa.Table]:
    """Arrow tables of at most `batch_rows` rows each, in the order the database sends them."""
    engine = _engine(url)
    statement = sa.text(query)
    names = statement.compile().params
    params = {"logical_date": logical_date} if "logical_date" in names else {}
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise SourceUnreachable(
                f"source {source!r}: cannot connect to {redacted(url)}: {_first_line(exc)}"
            ) from exc
        with conn:
            streaming = conn.execution_options(stream_results=True, yield_per=batch_rows)
            try:
                result = streaming.execute(statement, params)
                if not result.returns_rows:
                    raise QueryFailed(
                        f"source {source!r}: the query returns no rows (not a SELECT?)"
                    )
                columns = list(result.keys())
                _check_columns(columns, source)
                for rows in result.partitions(batch_rows):
                    yield arrow_batch(columns, rows)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise SourceUnreachable(
                        f"source {source!r}: connection lost mid-query: {_first_line(exc)}"
                    ) from exc
                raise QueryFailed(
                    f"source {source!r}: the query failed: {_first_line(exc)}"
                ) from exc
    finally:
        engine.dispose()


def _engine(url: str) -> sa.Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise QueryFailed(f"not a SQLAlchemy database URL: {redacted(url)}") from exc
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        return sa.create_engine(parsed, connect_args=connect_args)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise QueryFailed(
            f"no driver for {parsed.drivername!r}: install its SQLAlchemy dialect ({exc})"
        ) from exc


def _check_columns(columns: list[str], source: str) -> None:
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise QueryFailed(
            f"source {source!r}: the query returns duplicate column names {duplicates}:"
            " alias them (AS ...)"
        )


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__
