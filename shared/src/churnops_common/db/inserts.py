"""One switch for the dialect's INSERT (SQLite in embedded mode, Postgres in the stack): both
offer `on_conflict_do_nothing` / `on_conflict_do_update`, which plain SQLAlchemy inserts lack."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from churnops_common.db.engine import is_sqlite


def insert_for(engine: Engine, table: Table) -> Any:
    """`INSERT INTO table` in the engine's dialect, with its ON CONFLICT clauses."""
    return sqlite_insert(table) if is_sqlite(engine) else pg_insert(table)
