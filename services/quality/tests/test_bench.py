"""The PSI benchmark runs end to end on a small table (its figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_psi.py"


def test_benchmark_runs_and_reports_both_times() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "400", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "evidently DataDriftPreset(method='psi')" in done.stdout
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(figures) == {
        "rows",
        "churnops_psi_s",
        "churnops_profile_build_s",
        "evidently_s",
        "ratio",
    }
    assert figures["rows"] == 400 and figures["churnops_psi_s"] > 0
