"""Ingest peak memory and time: a warehouse table streamed to a snapshot, against the naive path.

    uv run python services/ingest/benchmarks/bench_ingest.py [--rows N] [--postgres URL] [--json]

Creates a scratch Postgres database (dropped afterwards) holding an N-row customers table
(default 1M rows, 16 columns shaped like the platform's contract, built server-side with
generate_series), then runs each path in its own subprocess so its peak RSS is its own
(resource.getrusage):

- imports: the interpreter with pandas, pyarrow, SQLAlchemy and psycopg loaded, nothing read:
  the floor every path stands on;
- naive: `pandas.read_sql` of the whole table, then `to_parquet` (what a notebook does);
- ours: `churnops_ingest.ingest_source.ingest`: a server-side cursor, Parquet parts of
  INGEST_BATCH_ROWS rows (default 10,000), one snapshot file with its fingerprint, into a local
  object store. Its peak grows with INGEST_BATCH_ROWS (about 2.5 MB per 1,000 rows on the
  contract's 16 columns), not with N.

The target is ours under 300 MB peak whatever N is. Figures depend on the machine and what
else runs on it: they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

DEFAULT_POSTGRES = os.environ.get(
    "CHURNOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TARGET_MB = 300

TABLE_SQL = """
CREATE TABLE customers AS
SELECT
    'C' || lpad(g::text, 9, '0') AS customer_id,
    (ARRAY['north', 'south', 'east', 'west', 'central'])[1 + g % 5] AS region,
    18 + g % 60 AS age,
    g % 72 AS tenure_months,
    (ARRAY['month-to-month', 'one-year', 'two-year'])[1 + g % 3] AS contract,
    (ARRAY['dsl', 'fiber', 'none'])[1 + g % 3] AS internet_service,
    (ARRAY['credit-card', 'bank-transfer', 'electronic-check'])[1 + g % 3] AS payment_method,
    CASE WHEN g % 2 = 0 THEN 'yes' ELSE 'no' END AS paperless_billing,
    round((20 + random() * 100)::numeric, 2) AS monthly_charges,
    round((random() * 8000)::numeric, 2) AS total_charges,
    1 + g % 4 AS num_products,
    g % 9 AS support_calls,
    random() * 40 AS avg_weekly_usage_hours,
    random() * 90 AS days_since_last_login,
    (1 + g % 5)::float8 AS satisfaction_score,
    (g % 4 = 0)::int AS churned
FROM generate_series(1, :rows) AS g
"""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_path(path: str, url: str, out: Path) -> dict[str, Any]:
    """One path, in this process (the parent runs each in its own subprocess)."""
    import pandas as pd
    import psycopg  # noqa: F401  (the driver every path loads)
    import pyarrow  # noqa: F401
    import sqlalchemy as sa

    started = time.perf_counter()
    rows = 0
    if path == "naive":
        engine = sa.create_engine(url)
        frame = pd.read_sql("SELECT * FROM customers", engine)
        frame.to_parquet(out / "naive.parquet", index=False)
        rows = len(frame)
    elif path == "ours":
        from datetime import date

        from churnops_common.settings import Settings
        from churnops_common.storage import object_store_from_settings
        from churnops_ingest.ingest_source import ingest
        from churnops_ingest.sources import Source, SqlSpec

        settings = Settings(churnops_mode="embedded", churnops_home=out / "home", _env_file=None)
        store = object_store_from_settings(settings)
        store.ensure_buckets(settings.buckets)
        source = Source(kind="new_data", sql=SqlSpec(url=url, query="SELECT * FROM customers"))
        rows = ingest(store, settings, "bench", source, date(2026, 12, 1)).rows
    return {
        "path": path,
        "rows": rows,
        "seconds": time.perf_counter() - started,
        "peak_mb": _peak_mb(),
    }


def _child(path: str, url: str, out: Path) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - this script, with our own arguments
        [sys.executable, __file__, "--child", path, "--postgres", url, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{path} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="An admin database URL.")
    parser.add_argument("--json", action="store_true", help="Last line: the figures as JSON.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_path(args.child, args.postgres, args.out)))
        return

    import sqlalchemy as sa

    name = f"churnops_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(TABLE_SQL), {"rows": args.rows})
        engine.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            results = {p: _child(p, url, Path(tmp)) for p in ("imports", "naive", "ours")}
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    print(f"{args.rows:,} rows x 16 columns from Postgres (server-side cursor for ours)")
    print(f"{'path':<10}{'rows':>12}{'seconds':>10}{'peak RSS MB':>14}")
    for result in results.values():
        print(
            f"{result['path']:<10}{result['rows']:>12,}{result['seconds']:>10.2f}"
            f"{result['peak_mb']:>14.0f}"
        )
    ours = results["ours"]["peak_mb"]
    verdict = "under" if ours < TARGET_MB else "OVER"
    print(f"ours: {ours:.0f} MB peak, {verdict} the {TARGET_MB} MB target")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
