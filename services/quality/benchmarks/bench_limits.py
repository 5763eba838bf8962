"""Files that must be refused before they are read: time and peak memory of the verdict.

    uv run python services/quality/benchmarks/bench_limits.py

Makes a CSV with 1,000,000 columns and a Parquet file of about 2 MB that declares 200,000,000
rows, then checks each in a fresh process (`check_file`, as the quality worker and
`churnops validate` do) and prints the verdict, the wall time and the process's peak memory.
Target: each rejected in under 2 s with a peak under 500 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECK = """
import json, resource, sys, time
from pathlib import Path
started = time.perf_counter()
from churnops_common.settings import Settings
from churnops_quality.checks import check_file
settings = Settings(_env_file=None)
result = check_file(Path(sys.argv[1]), "new_data", None, settings)
print(json.dumps({
    "status": result.verdict.status,
    "reason": result.verdict.reason[:120],
    "seconds": round(time.perf_counter() - started, 3),
    "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
"""


def wide_csv(path: Path, columns: int) -> Path:
    with path.open("w") as handle:
        handle.write(",".join(f"c{i}" for i in range(columns)) + "\n")
        handle.write(",".join("1" for _ in range(columns)) + "\n")
    return path


def long_parquet(path: Path, rows: int, group: int = 10_000_000) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"customer_id": pa.array([0] * group, pa.int8())})
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for _ in range(rows // group):
            writer.write_table(table, row_group_size=group)
    return path


def check(path: Path) -> dict[str, object]:
    out = subprocess.run(  # noqa: S603 - our own interpreter and script, a path we made
        [sys.executable, "-c", CHECK, str(path)], check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        csv = wide_csv(Path(tmp) / "wide.csv", 1_000_000)
        parquet = long_parquet(Path(tmp) / "long.parquet", 200_000_000)
        print(f"inputs made in {time.perf_counter() - started:.1f} s")
        for label, path in (("1M-column CSV", csv), ("200M-row Parquet", parquet)):
            result = check(path)
            size = path.stat().st_size / 2**20
            print(
                f"{label:18s} {size:7.1f} MiB  {result['status']:9s} in {result['seconds']:.3f} s,"
                f" peak {result['peak_mib']} MiB  ({result['reason']})"
            )


if __name__ == "__main__":
    main()
