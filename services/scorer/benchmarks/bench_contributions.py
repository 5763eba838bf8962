"""The compiled trees' pass (exit leaves, margin, decision-path contributions) on 1M rows: the
kernel as it is (dense credits, inputs rounded to float32 as they are read) against the route
it replaced, in one process, alternately.

    uv run python services/scorer/benchmarks/bench_contributions.py [--rows N] [--repeat R]
        [--family lightgbm|xgboost | --model pipeline.joblib]

- dense (kernel): `ForestTables.contributions`, each exit leaf's credits over all features;
- rounded first: the same kernel fed as it was before, an XGBoost model's matrix rounded to
  float32 by two numpy copies first (a LightGBM model's is not rounded: the same as dense).

Sparse credits (each leaf's path features only, as a CSR slice) were measured with a copy of the
kernel in this file and found slower (see `forest/kernels.py`); that copy lives in the history
(commit f33e925), not here, so the kernel has one body to keep right.

The rows are synthetic (`churnops generate`'s generator), turned into the model's matrix by the
scorer's own `FeatureMatrix` in chunks of `--chunk-rows` (the scorer's default, 50k), as the
scorer reads them. The model: the ChurnPipeline bench_score.py fits (LightGBM, 200 trees of 31
leaves, or XGBoost, 200 trees of depth 6), or one `churnops train` registered (its
`pipeline.joblib` under the home's objects/models/pipelines/). Each variant runs over all the
chunks, in turn, --repeat times; the fastest of each counts (others' work on a shared machine
only ever slows a run), and all must give the same numbers to the last bit. The top-3
selection that follows in the scorer is timed too. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# The model bench_score.py times, from its own file (this folder is on sys.path when run).
from bench_score import fit_pipeline

from churnops_common.ml.pipeline import ChurnPipeline
from churnops_scorer.forest import ForestTables


def matrices(pipeline: ChurnPipeline, rows: int, chunk_rows: int) -> list[np.ndarray]:
    import pyarrow as pa

    from churnops_common.synthetic import generate
    from churnops_scorer.features import FeatureMatrix

    features = FeatureMatrix(pipeline.preprocessor)
    frame = generate(rows, seed=7).drop(columns=["churned"])
    return [
        features(pa.Table.from_pandas(frame.iloc[lo : lo + chunk_rows], preserve_index=False))
        for lo in range(0, rows, chunk_rows)
    ]


def rounded_first(forest: ForestTables) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The kernel as it is, fed as before: the matrix rounded to float32 by two numpy copies,
    then the rounding in the kernel a no-op (rounding twice changes nothing)."""

    def run(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(features, dtype=np.float64)
        if forest.float32_inputs:
            x = x.astype(np.float32).astype(np.float64)
        values, margin = forest.contributions(x)
        return values, margin

    return run


def timed(run: Callable[[np.ndarray], Any], chunks: list[np.ndarray]) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    results = [run(chunk) for chunk in chunks]
    return time.perf_counter() - started, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--family", choices=["lightgbm", "xgboost"], default="lightgbm")
    parser.add_argument("--model", type=Path, default=None, help="a pipeline.joblib instead")
    args = parser.parse_args()

    import joblib

    from churnops_scorer.path_attribution import PathAttribution
    from churnops_scorer.reasons import top_reasons, warm_up

    pipeline = joblib.load(args.model) if args.model else fit_pipeline(args.family)
    forest = PathAttribution(pipeline).compiled
    assert forest is not None, "this model's trees do not compile into tables"
    chunks = matrices(pipeline, args.rows, args.chunk_rows)
    print(
        f"{pipeline.family}: {len(forest.leaf_start)} trees, {len(forest.leaf_values)}"
        f" leaves, {len(forest.kinds)} features, {forest.words.bits}-bit words,"
        f" {forest.fields.width} a row;"
        f" {np.count_nonzero(forest.credits) / max(len(forest.credits), 1):.1f} non-zero"
        " credits per leaf;"
        f" {args.rows:,} rows in chunks of {args.chunk_rows:,}",
        flush=True,
    )
    variants = {
        "dense (kernel)": forest.contributions,
        "rounded first": rounded_first(forest),
    }
    warm_up()
    for run in variants.values():
        run(chunks[0][:10])  # compiled (or loaded from numba's cache) before the clock
    best = dict.fromkeys([*variants, "top-3"], np.inf)
    for _ in range(args.repeat):
        results = {}
        for name, run in variants.items():
            seconds, results[name] = timed(run, chunks)
            best[name] = min(best[name], seconds)
        seconds, _ = timed(top_reasons, [values for values, _ in results["dense (kernel)"]])
        best["top-3"] = min(best["top-3"], seconds)
        for name, found in results.items():
            for (a, margin_a), (b, margin_b) in zip(results["dense (kernel)"], found, strict=True):
                assert np.array_equal(a, b) and np.array_equal(margin_a, margin_b), name
        print("  " + ", ".join(f"{k} {v:.3f}s" for k, v in best.items()), flush=True)
    kernel = best["dense (kernel)"]
    print(
        f"best of {args.repeat}: "
        + ", ".join(f"{k} {v:.3f}s ({v / kernel:.2f}x the kernel's)" for k, v in best.items())
        + "; all the same numbers to the last bit"
    )


if __name__ == "__main__":
    main()
