"""Benchmark: our PSI from a stored profile vs Evidently's `DataDriftPreset(method="psi")`.

    uv run python services/quality/benchmarks/bench_psi.py [--rows N] [--json]
    uv run python services/quality/benchmarks/bench_psi.py --whole-process [--rows N]

Both start from the same in-memory reference and current tables (N rows x 20 mixed columns:
12 numeric, 8 categorical). Evidently bins the union of both samples on every run, so it needs
the reference rows each time; ours loads the stored profile (fixed bins, JSON) and counts the
current batch into it, chunk by chunk. Building the profile is a one-off per baseline and is
printed separately. Figures are wall-clock seconds on this machine.

`--whole-process` times what users run, as whole processes reading the same two CSV files:
`churnops psi REFERENCE CURRENT --json` against a script that reads both files with pandas and
runs Evidently's preset (the way a user of Evidently computes PSI of two files).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from churnops_quality.profile import Profile, build_profile
from churnops_quality.psi import compute_psi
from churnops_quality.schema import infer_schema

NUMERIC, CATEGORICAL = 12, 8


def make_table(rows: int, seed: int, shift: float) -> pd.DataFrame:
    """20 mixed columns; `shift` moves every distribution a little."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(NUMERIC):
        match i % 4:
            case 0:
                values = rng.normal(50 + 5 * shift, 10, rows)
            case 1:
                values = rng.exponential(20 * (1 + shift), rows)
            case 2:
                values = rng.poisson(2 + shift, rows).astype("float64")  # few distinct values
            case _:
                values = rng.gamma(2.0, 3.0 + shift, rows)
        values[rng.random(rows) < 0.02] = np.nan
        columns[f"num_{i:02d}"] = values
    for j in range(CATEGORICAL):
        size = 3 + 2 * j
        weights = np.linspace(1.0, 1.0 + shift * 3, size)
        labels = np.array([f"c{j}_{k}" for k in range(size)], dtype=object)
        columns[f"cat_{j:02d}"] = rng.choice(labels, rows, p=weights / weights.sum())
    return pd.DataFrame(columns)


def ours(reference: pd.DataFrame, current: pd.DataFrame, chunk_rows: int) -> dict[str, float]:
    started = time.perf_counter()
    profile = build_profile(reference, infer_schema(reference))
    built = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        stored = Path(tmp) / "profile.json"
        stored.write_text(profile.model_dump_json())
        started = time.perf_counter()
        loaded = Profile.model_validate_json(stored.read_text())
        chunks = (current.iloc[i : i + chunk_rows] for i in range(0, len(current), chunk_rows))
        result = compute_psi(loaded, chunks)
        seconds = time.perf_counter() - started
    return {
        "profile_build_s": built,
        "psi_s": seconds,
        "max_psi": result.max_psi or 0.0,
        "features": len(result.features),
    }


def evidently(reference: pd.DataFrame, current: pd.DataFrame) -> float:
    warnings.filterwarnings("ignore")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c.startswith("num_")],
        categorical_columns=[c for c in reference.columns if c.startswith("cat_")],
    )
    started = time.perf_counter()
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    Report([DataDriftPreset(method="psi")]).run(cur, ref)
    return time.perf_counter() - started


EVIDENTLY_SCRIPT = """
import sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
reference, current = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
definition = DataDefinition(
    numerical_columns=[c for c in reference.columns if c.startswith("num_")],
    categorical_columns=[c for c in reference.columns if c.startswith("cat_")],
)
Report([DataDriftPreset(method="psi")]).run(
    Dataset.from_pandas(current, data_definition=definition),
    Dataset.from_pandas(reference, data_definition=definition),
)
"""


def whole_process(rows: int) -> dict[str, float]:
    """Both as whole processes on the same CSV files (start-up and parsing included)."""
    import os
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        ref, cur = Path(tmp) / "reference.csv", Path(tmp) / "current.csv"
        make_table(rows, seed=1, shift=0.0).to_csv(ref, index=False)
        make_table(rows, seed=2, shift=0.3).to_csv(cur, index=False)
        env = {**os.environ, "CHURNOPS_HOME": str(Path(tmp) / "home")}
        churnops = Path(sys.executable).with_name("churnops")
        commands = {
            "churnops": [str(churnops), "psi", str(ref), str(cur), "--json"],
            "evidently": [sys.executable, "-c", EVIDENTLY_SCRIPT, str(ref), str(cur)],
        }
        seconds = {}
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)  # noqa: S603
            seconds[name] = time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each table")
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument(
        "--whole-process", action="store_true", help="time the two commands on CSV files"
    )
    args = parser.parse_args()
    if args.rows < 100:
        parser.error("--rows must be at least 100")
    if args.whole_process:
        timed = whole_process(args.rows)
        print(
            f"{args.rows:,} rows x {NUMERIC + CATEGORICAL} columns, two CSV files, whole processes"
        )
        print(f"churnops psi REFERENCE CURRENT:            {timed['churnops']:8.3f} s")
        print(f"pandas.read_csv + evidently PSI preset:    {timed['evidently']:8.3f} s")
        ratio = timed["evidently"] / timed["churnops"]
        print(f"speed-up (evidently / churnops):           {ratio:8.1f} x")
        return
    reference = make_table(args.rows, seed=1, shift=0.0)
    current = make_table(args.rows, seed=2, shift=0.3)
    print(f"{args.rows:,} rows x {reference.shape[1]} columns (reference and current)")
    mine = ours(reference, current, args.chunk_rows)
    print(f"churnops profile build (once per baseline): {mine['profile_build_s']:8.3f} s")
    print(
        f"churnops PSI from stored profile:           {mine['psi_s']:8.3f} s"
        f"  ({mine['features']} features, max PSI {mine['max_psi']:.4f})"
    )
    theirs = evidently(reference, current)
    print(f"evidently DataDriftPreset(method='psi'):    {theirs:8.3f} s")
    ratio = theirs / mine["psi_s"] if mine["psi_s"] > 0 else float("inf")
    print(f"speed-up (evidently / churnops):            {ratio:8.1f} x")
    if args.json:
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "churnops_psi_s": mine["psi_s"],
                    "churnops_profile_build_s": mine["profile_build_s"],
                    "evidently_s": theirs,
                    "ratio": ratio,
                }
            )
        )


if __name__ == "__main__":
    main()
