"""Fixtures of the ingest tests: a real Postgres database as the warehouse, embedded settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from churnops_common.settings import Settings
from churnops_common.synthetic import generate


@pytest.fixture
def settings(embedded_settings: Settings) -> Settings:
    """Small batches, so even a test table streams through several Parquet parts."""
    return embedded_settings.model_copy(update={"ingest_batch_rows": 500})


@pytest.fixture
def warehouse(postgres_url: str) -> Iterator[Callable[..., pd.DataFrame]]:
    """`load(table, rows, seed=0, target=True)`: a synthetic customers table in Postgres."""
    engine = sa.create_engine(postgres_url)

    def load(table: str, rows: int, seed: int = 0, target: bool = True) -> pd.DataFrame:
        frame = generate(rows, seed=seed)
        if not target:
            frame = frame.drop(columns=["churned"])
        frame.to_sql(table, engine, index=False, if_exists="replace", chunksize=1000)
        return frame

    yield load
    engine.dispose()
