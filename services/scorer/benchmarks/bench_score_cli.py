"""`churnops score` as a whole process against the naive path, with the same trained model.

    uv run python services/scorer/benchmarks/bench_score_cli.py [--rows N] [--repeat R]

What a user runs, timed from the shell's point of view (process start to exit, imports and
model loading included, `PYTHONDONTWRITEBYTECODE=1` as in many container images):

- ours: `churnops score batch.csv --out preds.parquet` after `churnops train` in a fresh home:
  the contract's validation (quality's handler), the champion from the registry, the compiled
  trees with top-3 reasons and risk bands, Parquet out, the retention list and the recorded
  scoring run. The quality report and the monitor's label-free estimate follow in a detached
  process (`COMMAND_REPORTS=background`, the default): the benchmark waits for it to finish
  before the next timed command, so it never slows the naive run, and prints how long after
  the command it finished;
- naive: a fresh `python -c` that loads the same registered model with MLflow, reads the whole
  CSV with pandas, calls `predict_proba` and writes the probabilities with `to_csv`.

Both read the same N-row CSV (default 1M rows), a new one per repeat (the same file again
would reuse its recorded scoring run). The figures depend on the machine and what
else runs on it: they are printed, never asserted; the median of --repeat runs of each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAIVE = """
import sys
import mlflow
import pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
pipeline = mlflow.sklearn.load_model(sys.argv[2])
frame = pd.read_csv(sys.argv[3])
probability = pipeline.predict_proba(frame)[:, 1]
pd.DataFrame({"customer_id": frame["customer_id"], "churn_probability": probability}).to_csv(
    sys.argv[4], index=False
)
"""


def churnops(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("churnops")), *args]


FOLLOW_UPS_DONE = "handed-over deliveries done"  # the detached process's last log line


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
    return time.perf_counter() - started


def follow_ups_done(home: Path) -> int:
    log = home / "logs" / "background.log"
    return log.read_text().count(FOLLOW_UPS_DONE) if log.exists() else 0


def wait_for_follow_ups(home: Path, before: int, timeout: float = 600.0) -> float:
    """Seconds until the detached process of the command just timed has finished."""
    started = time.perf_counter()
    while follow_ups_done(home) <= before:
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"no '{FOLLOW_UPS_DONE}' in {home}/logs after {timeout:.0f} s")
        time.sleep(0.2)
    return time.perf_counter() - started


def champion_uri(env: dict[str, str]) -> tuple[str, str]:
    """(tracking URI, models:/ URI of the champion) of the benchmark's home."""
    script = (
        "from churnops_common.settings import Settings; s = Settings();"
        "print(s.mlflow_uri()); print(s.mlflow_model_name)"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], check=True, env=env, capture_output=True, text=True
    ).stdout.split()
    return out[0], f"models:/{out[1]}@champion"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-score-cli-"))
    try:
        home = folder / "home"
        env = {
            **os.environ,
            "CHURNOPS_HOME": str(home),
            "PYTHONDONTWRITEBYTECODE": "1",
            "COMMAND_REPORTS": "background",
        }
        train = folder / "train.csv"
        subprocess.run(  # noqa: S603
            churnops("generate", "--out", str(train), "--rows", str(args.train_rows)),
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        # A new file per repeat: scoring the same file again with the same champion reuses
        # its recorded run, which would time a lookup, not a scoring.
        batches = [folder / f"batch-{i}.csv" for i in range(args.repeat)]
        for seed, batch in enumerate(batches, start=7):
            command = ["generate", "--out", str(batch), "--rows", str(args.rows), "--no-target"]
            subprocess.run(  # noqa: S603
                churnops(*command, "--seed", str(seed)),
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        print(f"training the champion on {args.train_rows:,} rows ({args.trials} trials)...")
        subprocess.run(  # noqa: S603
            churnops("train", "--data", str(train), "--trials", str(args.trials)),
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        tracking, model = champion_uri(env)
        ours, naive, after = [], [], []
        for i, batch in enumerate(batches):
            out = folder / f"preds-{i}.parquet"
            before = follow_ups_done(home)
            ours.append(timed(churnops("score", str(batch), "--out", str(out)), env))
            after.append(wait_for_follow_ups(home, before))
            naive.append(
                timed(
                    [
                        sys.executable,
                        "-c",
                        NAIVE,
                        tracking,
                        model,
                        str(batch),
                        str(folder / f"naive-{i}.csv"),
                    ],
                    env,
                )
            )
        mine, theirs = statistics.median(ours), statistics.median(naive)
        print(f"rows: {args.rows:,}; cpus visible: {os.cpu_count()}; median of {args.repeat}")
        for label, seconds in (("churnops score (whole process)", mine), ("naive", theirs)):
            print(f"  {label:<32} {seconds:7.2f} s  {args.rows / seconds:>10,.0f} rows/s")
        print(f"  ours vs naive: {theirs / mine:.2f}x faster (target >= 3x)")
        print(
            f"  the detached report and estimate finished {statistics.median(after):.1f} s"
            " after the command (median; not timed)"
        )
        print(json.dumps({"rows": args.rows, "ours_s": ours, "naive_s": naive, "after_s": after}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
