"""Scoring throughput and peak memory: our streaming path against the limit and the naive path.

    uv run python services/scorer/benchmarks/bench_score.py [--rows N] [--big-rows M]
    uv run python services/scorer/benchmarks/bench_score.py --baseline-src DIR [--repeat R]

On one N-row CSV (default 1M rows), each path runs in its own subprocess (so peak RSS is its
own, read from resource.getrusage):

- limit: the model's bare predict on the same rows already in memory (pipeline.predict_proba),
- naive: the original stack's path: read the whole CSV, pipeline.predict_proba, to_csv,
- ours (path reasons): the scorer's streaming path (Arrow chunks, the model's trees compiled
  into bit-vector tables giving probability and decision-path contributions in one pass, risk
  band, top-3 reasons, Parquet out, score summary, retention list),
- ours (shap reasons): the same with exact SHAP reasons, on a smaller file (it is slow),

then ours again on a file --big-rows long (default 10x N) to show memory stays flat.

With --baseline-src DIR (another checkout of the repository, e.g. `git archive main | tar -x
-C DIR`), only our path runs, alternately with this code and with DIR's services, R times each
on the same file and model; the fastest of each counts and the ratio is printed.
Every path's clock starts once its model is loaded; ours also has its trees compiled and its
kernels loaded by then (a worker keeps both with its cached model), and prints that start-up.
The model is a ChurnPipeline of typical size fitted here: LightGBM, 200 trees of 31 leaves, or
with --family xgboost, XGBoost, 200 trees of depth 6.
Figures depend on the machine and what else runs on it: they are printed, never asserted.
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnops_common.ml.pipeline import ChurnPipeline

GEN_BLOCK = 500_000


def fit_pipeline(family: str) -> ChurnPipeline:
    """The benchmarks' model: LightGBM (200 trees of 31 leaves) or XGBoost (200 trees of
    depth 6) on 20k synthetic rows, as a ChurnPipeline."""
    import lightgbm as lgb
    import xgboost as xgb

    from churnops_common.ml.pipeline import ChurnPipeline, TabularPreprocessor
    from churnops_common.synthetic import generate

    train = generate(20_000, seed=1)
    pre = TabularPreprocessor.fit(train, exclude=("customer_id", "churned"))
    model: lgb.LGBMClassifier | xgb.XGBClassifier
    if family == "lightgbm":
        model = lgb.LGBMClassifier(n_estimators=200, num_leaves=31, learning_rate=0.05, verbose=-1)
    else:
        model = xgb.XGBClassifier(
            n_estimators=200, max_depth=6, learning_rate=0.05, enable_categorical=True
        )
    model.fit(pre.transform(train), train["churned"])
    return ChurnPipeline(
        pre,
        model,
        "lightgbm" if family == "lightgbm" else "xgboost",
        id_column="customer_id",
        target_column="churned",
        metadata={"model_name": "bench", "model_version": "bench"},
    )


def make_model(path: Path, family: str) -> None:
    import joblib

    joblib.dump(fit_pipeline(family), path)


def make_csv(path: Path, rows: int) -> None:
    """Synthetic batch without the target, written in blocks (bounded memory here too)."""
    from churnops_common.synthetic import generate

    written = 0
    while written < rows:
        n = min(GEN_BLOCK, rows - written)
        frame = generate(n, seed=100 + written // GEN_BLOCK).drop(columns=["churned"])
        frame["customer_id"] = [f"B{written + i:09d}" for i in range(n)]
        frame.to_csv(path, mode="a", header=written == 0, index=False)
        written += n


def peak_mib() -> float:
    """This process's peak RSS. Linux's VmHWM first: getrusage's maxrss keeps the high-water
    mark of the parent's memory across fork+exec, which would hide what the child itself used."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- one measurement, run in a child process -------------------------------------------------


def run_limit(file: Path, model: Path, out: Path) -> dict[str, Any]:
    import joblib
    import pandas as pd

    pipeline = joblib.load(model)
    frame = pd.read_csv(file)
    started = time.perf_counter()
    pipeline.predict_proba(frame)
    return {"rows": len(frame), "seconds": time.perf_counter() - started}


def run_naive(file: Path, model: Path, out: Path) -> dict[str, Any]:
    import joblib
    import pandas as pd

    pipeline = joblib.load(model)
    started = time.perf_counter()
    frame = pd.read_csv(file)
    probability = pipeline.predict_proba(frame)[:, 1]
    pd.DataFrame({"customer_id": frame["customer_id"], "churn_probability": probability}).to_csv(
        out, index=False
    )
    return {"rows": len(frame), "seconds": time.perf_counter() - started}


def run_ours(file: Path, model: Path, out: Path, reasons: str) -> dict[str, Any]:
    """Like the other paths, the model is loaded before the clock starts; so are the compiled
    trees and kernels, which a worker keeps with its cached model. That start-up is reported
    on its own ("startup")."""

    os.environ["SCORER_REASONS"] = reasons
    os.environ.setdefault("CHURNOPS_HOME", str(out.parent / "home"))
    from churnops_scorer.local import resolve_model, score_with
    from churnops_scorer.path_attribution import PathAttribution
    from churnops_scorer.reasons import warm_up

    started = time.perf_counter()
    loaded = resolve_model(str(model))
    if reasons == "path":
        PathAttribution.of(loaded.pipeline)
        warm_up()
    ready = time.perf_counter()
    result = score_with(loaded, file, out, progress=False)
    return {
        "rows": result.rows,
        "seconds": time.perf_counter() - ready,
        "startup_s": ready - started,
    }


def child(mode: str, file: Path, model: Path, out: Path) -> None:
    if mode == "limit":
        result = run_limit(file, model, out)
    elif mode == "naive":
        result = run_naive(file, model, out)
    else:
        result = run_ours(file, model, out, mode.removeprefix("ours-"))
    result["peak_mib"] = peak_mib()
    print(json.dumps(result))


def measure(mode: str, file: Path, model: Path, folder: Path, repeat: int = 1) -> dict[str, Any]:
    """The fastest of `repeat` runs (others' work on a shared machine only ever slows a run)."""
    results = [measure_once(mode, file, model, folder) for _ in range(repeat)]
    return min(results, key=lambda r: float(r["seconds"]))


def measure_once(
    mode: str, file: Path, model: Path, folder: Path, source: Path | None = None
) -> dict[str, Any]:
    """One run in a child process; with `source`, that checkout's packages come first."""

    suffix = ".csv" if mode == "naive" else ".parquet"
    out = folder / f"{mode}-{file.stem}{suffix}"
    env = dict(os.environ)
    if source is not None:
        paths = [str(p) for p in (source / "shared" / "src", *source.glob("services/*/src"))]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")])
    done = subprocess.run(  # noqa: S603 - this script, with our own arguments
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--file",
            str(file),
            "--model",
            str(model),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["rows_per_s"] = result["rows"] / result["seconds"]
    print(
        f"  {mode + (' (baseline)' if source else ''):<21} {file.name}:"
        f" {result['rows']:,} rows in {result['seconds']:.2f}s, "
        f"peak {result['peak_mib']:.0f} MiB"
        + (
            f" (start-up before the clock {result['startup_s']:.2f}s)"
            if "startup_s" in result
            else ""
        ),
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--big-rows", type=int, default=None, help="default: 10 x --rows; 0 skips the big file"
    )
    parser.add_argument("--shap-rows", type=int, default=5_000)
    parser.add_argument("--family", choices=["lightgbm", "xgboost"], default="lightgbm")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per path on the main file; the fastest counts"
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="another checkout: compare our path with its code, side by side",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file, args.model, args.out)
        return
    big_rows = 10 * args.rows if args.big_rows is None else args.big_rows
    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as tmp:
        folder = Path(tmp)
        model, batch = folder / "model.joblib", folder / f"batch-{args.rows}.csv"
        print(f"preparing: a {args.family} model and a {args.rows:,}-row CSV ...", flush=True)
        make_model(model, args.family)
        make_csv(batch, args.rows)
        if args.baseline_src is not None:
            compare(batch, model, folder, args.baseline_src, args.repeat)
            return
        rows = {}
        for name, mode in (
            ("limit", "limit"),
            ("naive", "naive"),
            ("ours (path reasons)", "ours-path"),
        ):
            rows[name] = measure(mode, batch, model, folder, args.repeat)
        if args.baseline_src is not None:
            compare(batch, model, folder, args.baseline_src, max(args.repeat, 3))
        small = folder / f"batch-{args.shap_rows}.csv"
        make_csv(small, args.shap_rows)
        rows[f"ours (shap reasons, {args.shap_rows:,} rows)"] = measure(
            "ours-shap", small, model, folder
        )
        if big_rows:
            big = folder / f"batch-{big_rows}.csv"
            make_csv(big, big_rows)
            rows[f"ours (path reasons, {big_rows:,} rows)"] = measure(
                "ours-path", big, model, folder
            )
    report(rows)


def compare(batch: Path, model: Path, folder: Path, baseline: Path, repeat: int) -> None:
    """Our path with this code and with the baseline's, alternately (the machine's load hits
    both alike); the fastest run of each counts."""
    runs: dict[str, list[dict[str, Any]]] = {"this code": [], "baseline": []}
    for _ in range(repeat):
        runs["this code"].append(measure_once("ours-path", batch, model, folder))
        runs["baseline"].append(measure_once("ours-path", batch, model, folder, baseline))
    best = {name: min(r["seconds"] for r in found) for name, found in runs.items()}
    for name, found in runs.items():
        seconds = ", ".join(f"{r['seconds']:.2f}" for r in found)
        rate = found[0]["rows"] / best[name]
        print(f"{name:<10} best {best[name]:.2f}s ({rate:,.0f} rows/s); runs: {seconds}")
    print(f"throughput, this code / baseline: {best['baseline'] / best['this code']:.3f}")


def report(rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'path':<40}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak MiB':>10}")
    for name, r in rows.items():
        print(
            f"{name:<40}{r['rows']:>12,}{r['seconds']:>10.2f}{r['rows_per_s']:>12,.0f}"
            f"{r['peak_mib']:>10.0f}"
        )
    ours = rows["ours (path reasons)"]["rows_per_s"]
    limit = rows["limit"]["rows_per_s"]
    print(f"\nours vs naive: {ours / rows['naive']['rows_per_s']:.2f}x faster (target >= 3x)")
    print(
        f"ours vs limit: {limit / ours:.2f}x the limit's time (target <= 2x; below 1: faster"
        " than the model's own predict)"
    )
    startup = rows["ours (path reasons)"].get("startup_s")
    if startup is not None:
        print(
            f"ours' start-up, once per model in a worker: {startup:.2f}s (load the model,"
            " compile its trees into tables, load or compile the kernels)"
        )
    print("shared machine: other work on it changes these figures between runs")
    print(json.dumps({name: {k: round(v, 3) for k, v in r.items()} for name, r in rows.items()}))


if __name__ == "__main__":
    main()
