"""Numbered SQL migrations from `sql/` (Postgres), or the same tables from metadata (SQLite)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, select, text

from churnops_common.db.engine import is_sqlite
from churnops_common.db.tables import metadata, schema_migrations

_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# An arbitrary constant: serialises concurrent `db upgrade` runs (init container + workers).
_MIGRATION_LOCK_ID = 7_301_994_001


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_dir() -> Path:
    """`CHURNOPS_SQL_DIR`, else the copy packaged in the wheel, else the repository's `sql/`."""
    override = os.environ.get("CHURNOPS_SQL_DIR")
    if override:
        return Path(override)
    packaged = Path(str(resources.files("churnops_common"))) / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[4] / "sql"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name!r} is not named NNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {directory}")
    if not found:
        raise FileNotFoundError(f"no migrations in {directory}")
    return found


def upgrade(engine: Engine, directory: Path | None = None) -> list[str]:
    """Apply what is not applied yet; returns the names applied (empty when up to date)."""
    migrations = load_migrations(directory)
    if is_sqlite(engine):
        return _upgrade_sqlite(engine, migrations)
    applied: list[str] = []
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS monitoring"))
        schema_migrations.create(conn, checkfirst=True)
        done = {row.version: row.checksum for row in conn.execute(select(schema_migrations))}
        for migration in migrations:
            if migration.version in done:
                _check_unchanged(migration, done[migration.version])
                continue
            conn.exec_driver_sql(migration.sql)
            _record(conn, migration)
            applied.append(f"{migration.version:03d}_{migration.name}")
    return applied


def _upgrade_sqlite(engine: Engine, migrations: list[Migration]) -> list[str]:
    applied: list[str] = []
    with engine.begin() as conn:
        metadata.create_all(conn, checkfirst=True)
        done = {row.version for row in conn.execute(select(schema_migrations.c.version))}
        for migration in migrations:
            if migration.version not in done:
                _record(conn, migration)
                applied.append(f"{migration.version:03d}_{migration.name}")
    return applied


def _record(conn: object, migration: Migration) -> None:
    conn.execute(  # type: ignore[attr-defined]
        schema_migrations.insert().values(
            version=migration.version,
            name=migration.name,
            checksum=migration.checksum,
            applied_at=datetime.now(UTC),
        )
    )


def _check_unchanged(migration: Migration, recorded: str) -> None:
    if recorded != migration.checksum:
        raise RuntimeError(
            f"migration {migration.version:03d}_{migration.name} was edited after it was applied;"
            " add a new numbered migration instead"
        )


GRAFANA_ROLE = "churnops_grafana"


def enable_grafana_login(engine: Engine, password: str) -> bool:
    """Let the read-only Grafana role (migration 009) log in with `password`; Postgres only.

    The password travels as a bound parameter (a session setting read by `format(%L)`), never
    spliced into the statement text.
    """
    if is_sqlite(engine) or not password:
        return False
    with engine.begin() as conn:
        conn.execute(
            text("SELECT set_config('churnops.grafana_password', :pw, true)"), {"pw": password}
        )
        conn.execute(
            text(
                "DO $$ BEGIN EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', "
                f"'{GRAFANA_ROLE}', current_setting('churnops.grafana_password')); END $$"
            )
        )
    return True
