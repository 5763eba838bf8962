"""The compiled trees' pass (exit leaves, margin, decision-path contributions) on 1M rows: the
kernel as it is against the same kernel with dense credits, in one process, alternately.

    uv run python services/scorer/benchmarks/bench_contributions.py [--rows N] [--repeat R]
        [--family lightgbm|xgboost | --model pipeline.joblib]

- kernel: `ForestTables.contributions` as built: each root split's credit summed per interval of
  its feature into the tables, then, per tree, the exit leaf's other credits: as a padded list
  of (feature, credit) where no leaf has more than `MAX_SPARSE_SLOTS` of them (shallow trees),
  else as a dense row over all features;
- dense credits: the same tables with every leaf's other credits as a dense row (the kernel's
  only form before the root tables, when it added each leaf's whole row, root credit included).

The rows are synthetic (`churnops generate`'s generator), turned into the model's matrix by the
scorer's own `FeatureMatrix` in chunks of `--chunk-rows` (the scorer's default, 50k), as the
scorer reads them. The model: the ChurnPipeline bench_score.py fits (LightGBM, 200 trees of 31
leaves, or XGBoost, 200 trees of depth 6), or one `churnops train` registered (its
`pipeline.joblib` under the home's objects/models/pipelines/). Each variant runs over all the
chunks, in turn, --repeat times; the fastest of each counts (others' work on a shared machine
only ever slows a run). Both must give the same margin to the last bit and the same credits
within rounding (they add them in another order). The top-3 selection that follows in the
scorer is timed too. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
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


def dense_credits(forest: ForestTables) -> ForestTables:
    """The same tables with each leaf's credits below the root as a dense row."""
    if not forest.sparse_credits:
        return forest
    dense = np.zeros((len(forest.leaf_values), len(forest.kinds)))
    leaves = np.repeat(np.arange(len(dense)), forest.leaf_features.shape[1])
    np.add.at(dense, (leaves, forest.leaf_features.ravel()), forest.leaf_credits.ravel())
    no_slots = np.zeros((len(dense), 0), dtype=np.int64)
    return replace(forest, leaf_features=no_slots, leaf_credits=dense, sparse_credits=False)


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
        f" {np.count_nonzero(forest.leaf_credits) / max(len(forest.leaf_credits), 1):.1f} non-zero"
        " credits per leaf;"
        f" {args.rows:,} rows in chunks of {args.chunk_rows:,}",
        flush=True,
    )
    variants = {
        "kernel": forest.contributions,
        "dense credits": dense_credits(forest).contributions,
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
        seconds, _ = timed(top_reasons, [values for values, _ in results["kernel"]])
        best["top-3"] = min(best["top-3"], seconds)
        for name, found in results.items():
            for (a, margin_a), (b, margin_b) in zip(results["kernel"], found, strict=True):
                assert np.array_equal(margin_a, margin_b), name
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=name)
        print("  " + ", ".join(f"{k} {v:.3f}s" for k, v in best.items()), flush=True)
    kernel = best["kernel"]
    print(
        f"best of {args.repeat}: "
        + ", ".join(f"{k} {v:.3f}s ({v / kernel:.2f}x the kernel's)" for k, v in best.items())
        + "; the same margins to the last bit, the same credits within 1e-12"
    )


if __name__ == "__main__":
    main()
