from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from churnops_common.db.engine import make_engine
from churnops_common.db.migrations import (
    GRAFANA_ROLE,
    enable_grafana_login,
    load_migrations,
    upgrade,
)
from churnops_common.db.tables import metadata

EXPECTED_TABLES = {
    "processed_events",
    "dead_letters",
    "quality_runs",
    "feature_psi",
    "scoring_runs",
    "segment_metrics",
    "model_promotions",
    "alerts",
    "schema_migrations",
}


def _columns(engine: sa.Engine, schema: str | None) -> dict[str, set[str]]:
    inspector = sa.inspect(engine)
    return {
        table: {c["name"] for c in inspector.get_columns(table, schema=schema)}
        for table in inspector.get_table_names(schema=schema)
    }


def test_migrations_are_numbered_and_found() -> None:
    migrations = load_migrations()
    assert migrations[0].version == 1
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)


def test_sqlite_upgrade_twice_creates_every_table(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    first = upgrade(engine)
    assert first[0] == "001_monitoring_schema"
    assert upgrade(engine) == []
    assert set(_columns(engine, None)) >= EXPECTED_TABLES


@pytest.mark.services
def test_postgres_upgrade_twice_matches_the_metadata(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    applied = upgrade(engine)
    assert "001_monitoring_schema" in applied
    assert upgrade(engine) == []
    found = _columns(engine, "monitoring")
    assert set(found) >= EXPECTED_TABLES
    # The SQL files and the SQLAlchemy tables must describe the same columns.
    for table in metadata.sorted_tables:
        assert found[table.name] == {c.name for c in table.columns}, table.name
    engine.dispose()


@pytest.mark.services
def test_grafana_role_reads_the_monitoring_schema_only(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    upgrade(engine)
    with engine.begin() as conn:  # a table created after 009 is readable too
        conn.execute(sa.text("CREATE TABLE monitoring.later_table (x INTEGER)"))
    with engine.connect() as conn:
        conn.execute(sa.text(f"SET ROLE {GRAFANA_ROLE}"))
        for table in ("quality_runs", "model_promotions", "later_table"):
            conn.execute(sa.text(f"SELECT count(*) FROM monitoring.{table}")).scalar_one()
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(sa.text("DELETE FROM monitoring.quality_runs"))
        conn.rollback()
    with engine.connect() as conn:
        before = conn.execute(
            sa.text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": GRAFANA_ROLE}
        ).scalar_one()
    try:
        assert enable_grafana_login(engine, "it's a 'quoted' test password")
        with engine.connect() as conn:
            assert conn.execute(
                sa.text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": GRAFANA_ROLE}
            ).scalar_one()
        assert not enable_grafana_login(engine, "")  # no password: nothing to do
    finally:
        if not before:  # the role is the server's: leave it as this test found it
            with engine.begin() as conn:
                conn.execute(sa.text(f"ALTER ROLE {GRAFANA_ROLE} NOLOGIN PASSWORD NULL"))
    engine.dispose()


@pytest.mark.services
def test_postgres_rejects_an_edited_migration(postgres_url: str, tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "001_first.sql").write_text("CREATE TABLE IF NOT EXISTS monitoring.t (a int);")
    engine = make_engine(postgres_url)
    assert upgrade(engine, sql) == ["001_first"]
    (sql / "001_first.sql").write_text("CREATE TABLE IF NOT EXISTS monitoring.t (b int);")
    with pytest.raises(RuntimeError, match="edited after it was applied"):
        upgrade(engine, sql)
    (sql / "002_second.sql").write_text("ALTER TABLE monitoring.t ADD COLUMN IF NOT EXISTS c int;")
    (sql / "001_first.sql").write_text("CREATE TABLE IF NOT EXISTS monitoring.t (a int);")
    assert upgrade(engine, sql) == ["002_second"]
    engine.dispose()


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match=r"NNN_name\.sql"):
        load_migrations(tmp_path)
