"""Benchmark: one training with 1 and with 2 trainer processes sharing its Optuna search.

    uv run python services/trainer/benchmarks/bench_distributed.py [--rows 50000]
        [--trials 16] [--seed 7] [--order 1,2] [--json]

The stack runs as local processes with compose's commands (tests/system/harness.py): real
Postgres (a fresh database; CHURNOPS_TEST_POSTGRES_URL names the server), a private Redis, moto
as S3, the MLflow server, and two trainer workers (`celery ... -Q trainer --concurrency 1`).
A synthetic training set from `churnops generate` (the same rows and seed for every run) is
uploaded once; each run is one `RetrainRequested(manual)` naming it, so every run trains on the
same rows, the same holdout and the same trial budget. For the 1-process run the second trainer
is stopped; for the 2-process run it is started again. Each trainer fits with one thread
(`n_jobs=1`) in a shared search, so two processes can use two cores.

Prints, per run: the wall time from publishing the request to the training's row saying `done`,
the trainer's own handling time (training_runs), how many trials each process ran (from the
workers' logs), and the holdout PR-AUC; then the speed-up and the PR-AUC difference. The target
is a speed-up of at least 1.6 with PR-AUC within 0.005 on a quiet two-core machine: the figures
are wall times, so say how busy the machine was; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))  # the system-test harness starts the stack

from tests.system.harness import BIN, LocalStack  # noqa: E402

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HELPER_RAN = re.compile(r"study (\S+): helper \d+ ran (\d+) trial")
COORDINATOR_RAN = re.compile(r"study (\S+): (\d+) of \d+ trials ran in the coordinator")


@dataclass
class Run:
    processes: int
    wall_s: float
    handled_s: float
    holdout_pr_auc: float
    trials_by_process: dict[str, int]


def _generate(workdir: Path, rows: int, seed: int) -> Path:
    path = workdir / f"training-{rows}-{seed}.csv"
    command = [str(BIN / "churnops"), "generate", "--out", str(path), "--rows", str(rows)]
    # Our own CLI, from this environment, with numbers for arguments.
    subprocess.run([*command, "--seed", str(seed)], check=True, capture_output=True)  # noqa: S603
    return path


def _train(stack: LocalStack, ref: Any, processes: int) -> Run:
    from churnops_common.events import RetrainRequested

    event = RetrainRequested.start_chain(
        f"bench-distributed-{processes}-{uuid.uuid4()}",
        reason="manual",
        detail=f"benchmark, {processes} trainer process(es)",
        data=ref,
    )
    started = time.monotonic()
    stack.publish(event)
    query = (
        "SELECT status, detail, holdout_pr_auc, EXTRACT(EPOCH FROM finished_at - started_at)"
        " AS handled_s, run_id FROM monitoring.training_runs WHERE correlation_id = :c"
    )

    def finished() -> bool:
        rows = stack.rows(query, c=event.correlation_id)
        return bool(rows) and rows[0].status in ("done", "failed", "skipped")

    stack.wait_until(finished, 3600, f"the {processes}-process training", poll=0.5)
    wall = time.monotonic() - started
    [row] = stack.rows(query, c=event.correlation_id)
    if row.status != "done":
        raise RuntimeError(f"the {processes}-process training ended {row.status}: {row.detail}")
    return Run(processes, wall, float(row.handled_s), float(row.holdout_pr_auc), {})


def _trials_by_process(stack: LocalStack, study_suffix: str) -> dict[str, int]:
    """Trials each trainer ran for the study whose name ends with the run's id prefix."""
    found: dict[str, int] = {}
    for proc in stack.workers("trainer"):
        text = proc.log.read_text(errors="replace")
        for pattern in (HELPER_RAN, COORDINATOR_RAN):
            for study, count in pattern.findall(text):
                if study.endswith(study_suffix):
                    found[proc.name] = found.get(proc.name, 0) + int(count)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--order", default="1,2", help="trainer process counts, in run order")
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    args = parser.parse_args()
    import os

    admin = os.environ.get("CHURNOPS_TEST_POSTGRES_URL", POSTGRES_URL)
    workdir = Path(tempfile.mkdtemp(prefix="churnops-bench-distributed-"))
    env = {
        "OPTUNA_N_TRIALS": str(args.trials),
        "TRAINER_N_JOBS": "1",
        "TRAINER_TRIAL_HEARTBEAT_S": "5",
        "TRAINER_TRIAL_GRACE_S": "30",
    }
    stack = LocalStack(
        workdir, admin, b"", trainers=2, services=("trainer",), bridge=False, extra_env=env
    )
    runs: list[Run] = []
    try:
        setup = time.monotonic()
        stack.start()
        path = _generate(workdir, args.rows, args.seed)
        info = stack.store.put_file(stack.settings.minio_landing_bucket, "training/bench.csv", path)
        from churnops_common.events import ObjectRef

        ref = ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)
        print(
            f"stack up and {args.rows} rows uploaded in {time.monotonic() - setup:.0f} s",
            flush=True,
        )
        for processes in [int(p) for p in args.order.split(",")]:
            up = {p.name for p in stack.workers("trainer") if p.popen.poll() is None}
            for name in ("trainer2",):
                if processes == 1 and name in up:
                    stack.stop_worker(name)
                elif processes == 2 and name not in up:
                    stack.spawn_worker(name)
            if processes == 2:
                stack.wait_for_workers()
            run = _train(stack, ref, processes)
            [run_id] = stack.rows(
                "SELECT run_id FROM monitoring.training_runs ORDER BY started_at DESC LIMIT 1"
            )
            run.trials_by_process = _trials_by_process(stack, str(run_id[0])[:36])
            runs.append(run)
            print(
                f"{processes} trainer process(es): wall {run.wall_s:.1f} s (handler"
                f" {run.handled_s:.1f} s), holdout PR-AUC {run.holdout_pr_auc:.4f},"
                f" trials by process {run.trials_by_process}",
                flush=True,
            )
    finally:
        stack.stop()
    _report(runs, args)


def _report(runs: list[Run], args: argparse.Namespace) -> None:
    by = {r.processes: r for r in runs}
    summary: dict[str, Any] = {
        "rows": args.rows,
        "trials": args.trials,
        "seed": args.seed,
        "runs": [asdict(r) for r in runs],
    }
    if 1 in by and 2 in by:
        summary["speedup"] = by[1].wall_s / by[2].wall_s
        summary["handler_speedup"] = by[1].handled_s / by[2].handled_s
        summary["pr_auc_difference"] = by[2].holdout_pr_auc - by[1].holdout_pr_auc
    if args.json:
        print(json.dumps(summary))
        return
    print(f"\nOne training, {args.rows} synthetic rows, {args.trials} trials, seed {args.seed}")
    print(f"{'processes':>9}  {'wall s':>8}  {'handler s':>9}  {'PR-AUC':>7}  trials by process")
    for r in runs:
        print(
            f"{r.processes:>9}  {r.wall_s:>8.1f}  {r.handled_s:>9.1f}  {r.holdout_pr_auc:>7.4f}"
            f"  {r.trials_by_process}"
        )
    if "speedup" in summary:
        print(
            f"speed-up 2 vs 1: {summary['speedup']:.2f}x wall ({summary['handler_speedup']:.2f}x"
            f" handler; target >= 1.6x on a quiet 2-core machine); holdout PR-AUC difference"
            f" {summary['pr_auc_difference']:+.4f} (target within 0.005)"
        )


if __name__ == "__main__":
    main()
