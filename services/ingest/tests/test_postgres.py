"""Postgres as the warehouse: streamed snapshots, idempotent re-runs, and each bad source."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from churnops_common.errors import is_transient
from churnops_common.settings import Settings
from churnops_common.storage import ObjectStore, object_store_from_settings
from churnops_ingest.ingest_source import EmptyResult, SnapshotChanged, ingest
from churnops_ingest.sources import Source, SqlSpec
from churnops_ingest.sql_source import QueryFailed, SourceUnreachable

DAY = date(2026, 12, 1)


def _source(url: str, query: str = "SELECT * FROM customers", kind: str = "new_data") -> Source:
    return Source.model_validate({"kind": kind, "sql": SqlSpec(url=url, query=query)})


def _landed(store: ObjectStore, bucket: str = "landing") -> list[str]:
    return [info.key for info in store.list_objects(bucket)]


@pytest.fixture
def store(settings: Settings) -> ObjectStore:
    store = object_store_from_settings(settings)
    store.ensure_buckets(settings.buckets)
    return store


def test_a_table_streams_into_one_snapshot_with_every_row(
    warehouse: Callable[..., pd.DataFrame],
    postgres_url: str,
    settings: Settings,
    store: ObjectStore,
) -> None:
    table = warehouse("customers", 2_300)
    result = ingest(store, settings, "crm", _source(postgres_url), DAY)

    assert result.created and result.rows == 2_300
    assert result.object.key == f"new_data/crm/{result.snapshot}.parquet"
    assert result.snapshot.startswith("2026-12-01-")
    with store.local_path(result.object.bucket, result.object.key) as path:
        metadata = pq.read_metadata(path)
        landed = pd.read_parquet(path)
    assert metadata.num_row_groups == 5  # batches of 500 rows: streamed, not read whole
    pd.testing.assert_frame_equal(
        landed.sort_values("customer_id").reset_index(drop=True),
        table.sort_values("customer_id").reset_index(drop=True),
        check_dtype=False,
    )


def test_a_rerun_writes_nothing_and_a_changed_result_is_refused(
    warehouse: Callable[..., pd.DataFrame],
    postgres_url: str,
    settings: Settings,
    store: ObjectStore,
) -> None:
    warehouse("customers", 800)
    first = ingest(store, settings, "crm", _source(postgres_url), DAY)
    # The same rows in another order are the same result.
    reordered = _source(postgres_url, "SELECT * FROM customers ORDER BY random()")
    again = ingest(store, settings, "crm", _source(postgres_url), DAY)
    assert not again.created and again.object == first.object
    assert again.fingerprint == first.fingerprint
    assert _landed(store) == [first.object.key]
    assert ingest(store, settings, "other", reordered, DAY).fingerprint == first.fingerprint

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE customers SET age = age + 1 WHERE customer_id = :id"),
            {"id": "C0000-0000007"},
        )
    engine.dispose()
    with pytest.raises(
        SnapshotChanged, match=r"already landed as s3://landing/new_data/crm/.*800 rows"
    ):
        ingest(store, settings, "crm", _source(postgres_url), DAY)
    # Another logical date is another snapshot.
    later = ingest(store, settings, "crm", _source(postgres_url), date(2026, 12, 2))
    assert later.created and later.object.key != first.object.key


def test_the_logical_date_is_bound_when_the_query_names_it(
    postgres_url: str, settings: Settings, store: ObjectStore
) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE events (id int, day date)"))
        conn.execute(sa.text("INSERT INTO events VALUES (1, '2026-12-01'), (2, '2026-12-02')"))
    engine.dispose()
    query = "SELECT id FROM events WHERE day = :logical_date"
    result = ingest(store, settings, "ev", _source(postgres_url, query), DAY)
    with store.local_path(result.object.bucket, result.object.key) as path:
        assert pd.read_parquet(path)["id"].tolist() == [1]


def test_an_unreachable_database_is_transient_with_a_clear_reason(
    settings: Settings, store: ObjectStore
) -> None:
    url = "postgresql+psycopg://someone:s3cret-pw@127.0.0.1:1/warehouse"
    with pytest.raises(SourceUnreachable, match=r"cannot connect to .*127\.0\.0\.1:1") as caught:
        ingest(store, settings, "crm", _source(url), DAY)
    assert "s3cret-pw" not in str(caught.value)
    assert is_transient(caught.value)
    assert _landed(store) == []


def test_a_query_error_is_permanent_and_says_what_the_database_said(
    postgres_url: str, settings: Settings, store: ObjectStore
) -> None:
    with pytest.raises(QueryFailed, match=r'relation "no_such_table" does not exist') as caught:
        ingest(store, settings, "crm", _source(postgres_url, "SELECT * FROM no_such_table"), DAY)
    assert not is_transient(caught.value)
    assert _landed(store) == []


def test_an_empty_result_lands_nothing(
    warehouse: Callable[..., pd.DataFrame],
    postgres_url: str,
    settings: Settings,
    store: ObjectStore,
) -> None:
    warehouse("customers", 10)
    query = "SELECT * FROM customers WHERE age < 0"
    with pytest.raises(EmptyResult, match="returned no rows for 2026-12-01: nothing landed"):
        ingest(store, settings, "crm", _source(postgres_url, query), DAY)
    assert _landed(store) == []


def test_a_column_of_nulls_then_numbers_gets_one_type(
    postgres_url: str, settings: Settings, store: ObjectStore, tmp_path: Path
) -> None:
    """Batch one sees only nulls in `score`; batch two sees numbers: one int64 column."""
    query = (
        "SELECT g AS id, CASE WHEN g > 600 THEN g END AS score,"
        " (g * 1.5)::numeric(10, 2) AS amount FROM generate_series(1, 1000) AS g ORDER BY g"
    )
    result = ingest(store, settings, "gen", _source(postgres_url, query), DAY)
    with store.local_path(result.object.bucket, result.object.key) as path:
        schema = pq.read_schema(path)
        frame = pd.read_parquet(path)
    assert str(schema.field("score").type) == "int64"
    assert str(schema.field("amount").type) == "double"  # NUMERIC arrives as a float
    assert frame["score"].isna().sum() == 600
