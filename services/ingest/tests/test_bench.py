"""The ingest benchmark runs end to end on a small table (its figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ingest.py"


def test_benchmark_runs_every_path_on_the_same_rows(postgres_admin_url: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "3000", "--postgres", postgres_admin_url, "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MB target" in done.stdout
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(figures) == {"imports", "naive", "ours"}
    assert figures["naive"]["rows"] == figures["ours"]["rows"] == 3000
    assert all(f["peak_mb"] > 0 for f in figures.values())
