"""The compiled trees' pass (exit leaves, margin, decision-path contributions) on 1M rows: the
kernel as it is (dense credits, inputs rounded to float32 as they are read) against two
variants, in one process, alternately.

    uv run python services/scorer/benchmarks/bench_contributions.py [--rows N] [--repeat R]
        [--family lightgbm|xgboost | --model pipeline.joblib]

- dense (kernel): `ForestTables.contributions`, each exit leaf's credits over all features;
- rounded first: the same kernel fed as it was before, an XGBoost model's matrix rounded to
  float32 by two numpy copies first (a LightGBM model's is not rounded: the same as dense);
- sparse: each leaf's non-zero credits only (the features on its path), as a CSR slice.

The rows are synthetic (`churnops generate`'s generator), turned into the model's matrix by the
scorer's own `FeatureMatrix` in chunks of `--chunk-rows` (the scorer's default, 50k), as the
scorer reads them. The model: a ChurnPipeline fitted here (LightGBM, 200 trees of 31 leaves, or
XGBoost, 200 trees of depth 6, as in bench_score.py), or one `churnops train` registered (its
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

from churnops_common.ml.pipeline import ChurnPipeline
from churnops_scorer.forest import ForestTables
from churnops_scorer.forest.kernels import BLOCK_ROWS
from churnops_scorer.jit import LOCK, compiled

prange = range  # numba.prange once `_sparse_contributions` is compiled (churnops_scorer.jit)


def make_pipeline(family: str) -> ChurnPipeline:
    import lightgbm as lgb
    import xgboost as xgb

    from churnops_common.ml.pipeline import TabularPreprocessor
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
    return ChurnPipeline(pre, model, family, id_column="customer_id", target_column="churned")  # type: ignore[arg-type]


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


def _sparse_contributions(  # pragma: no cover - runs compiled
    x: np.ndarray,
    tables: tuple[np.ndarray, ...],
    sparse: tuple[np.ndarray, np.ndarray, np.ndarray],
    words_format: tuple[Any, ...],
    zero_window: float,
    float32_inputs: bool,
    contributions: np.ndarray,
    margin: np.ndarray,
) -> None:
    """The kernel with sparse credits: per leaf, only the features on its path, as a CSR slice
    [start[leaf], start[leaf + 1]) of (feature, credit), added to the row's totals."""
    table, row_start, kinds, n_categories, cuts, cut_start, word_start, leaf_start, values = tables
    credit_start, credit_features, credit_values = sparse
    bits, all_ones, de_bruijn, shift, lowest_bit = words_format
    n, n_features = x.shape
    width = table.shape[1]
    n_trees = word_start.shape[0] - 1
    one = all_ones & (all_ones >> (bits - 1))
    for block in prange((n + BLOCK_ROWS - 1) // BLOCK_ROWS):
        words = np.empty(width, dtype=table.dtype)
        total = np.empty(n_features)
        for i in range(block * BLOCK_ROWS, min(n, (block + 1) * BLOCK_ROWS)):
            for w in range(width):
                words[w] = all_ones
            for f in range(n_features):
                total[f] = 0.0
            for f in range(n_features):
                kind = kinds[f]
                if kind == 0:
                    continue
                value = np.float64(np.float32(x[i, f])) if float32_inputs else x[i, f]
                if kind == 2:
                    k = n_categories[f]
                    code = k if (value != value or value < 0.0 or value >= k) else np.int64(value)
                    row = row_start[f] + code
                else:
                    lo, hi = cut_start[f], cut_start[f + 1]
                    if value != value:
                        row = row_start[f] + (hi - lo) + 2
                    elif -zero_window <= value <= zero_window:
                        row = row_start[f] + (hi - lo) + 1
                    else:
                        row = row_start[f] + np.searchsorted(cuts[lo:hi], value)
                for w in range(width):
                    words[w] &= table[row, w]
            raw = 0.0
            for t in range(n_trees):
                w = word_start[t]
                while words[w] == 0:
                    w += 1
                word = words[w]
                lowest = word & (all_ones ^ (word - one))
                bit = lowest_bit[((lowest * de_bruijn) & all_ones) >> shift]
                leaf = leaf_start[t] + (w - word_start[t]) * bits + bit
                raw += values[leaf]
                for c in range(credit_start[leaf], credit_start[leaf + 1]):
                    total[credit_features[c]] += credit_values[c]
            margin[i] = raw
            for f in range(n_features):
                contributions[i, f] = total[f]


def sparse_kernel(forest: ForestTables) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The same pass with each leaf's non-zero credits only (zeros left out change no sum)."""
    leaf, feature = np.nonzero(forest.credits)  # row-major: leaf after leaf
    counts = np.bincount(leaf, minlength=len(forest.credits))
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    sparse = (start, feature.astype(np.int64), np.ascontiguousarray(forest.credits[leaf, feature]))
    w = forest.words
    tables = (
        forest.table,
        forest.row_start,
        forest.kinds,
        forest.n_categories,
        forest.cuts,
        forest.cut_start,
        forest.word_start,
        forest.leaf_start,
        forest.leaf_values,
    )
    kernel = compiled(_sparse_contributions)

    def run(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(features, dtype=np.float64)
        contributions, margin = np.empty(x.shape), np.empty(len(x))
        formats = (w.bits, w.all_ones, w.de_bruijn, w.shift, w.lowest_bit)
        args = (forest.zero_window, forest.float32_inputs, contributions, margin)
        with LOCK:
            kernel(x, tables, sparse, formats, *args)
        return contributions, margin + forest.base_margin

    return run


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

    pipeline = joblib.load(args.model) if args.model else make_pipeline(args.family)
    forest = PathAttribution(pipeline).compiled
    assert forest is not None, "this model's trees do not compile into tables"
    chunks = matrices(pipeline, args.rows, args.chunk_rows)
    print(
        f"{pipeline.family}: {len(forest.word_start) - 1} trees, {len(forest.leaf_values)}"
        f" leaves, {len(forest.kinds)} features, {forest.words.bits}-bit words;"
        f" {np.count_nonzero(forest.credits) / max(len(forest.credits), 1):.1f} non-zero"
        " credits per leaf;"
        f" {args.rows:,} rows in chunks of {args.chunk_rows:,}",
        flush=True,
    )
    variants = {
        "dense (kernel)": forest.contributions,
        "rounded first": rounded_first(forest),
        "sparse": sparse_kernel(forest),
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
