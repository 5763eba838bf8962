"""Benchmark: our tuned, calibrated pipeline beside plain baselines, over several splits.

    uv run python services/trainer/benchmarks/bench_train.py [--trials 30]
        [--datasets telco,bank,synth3k,synth20k,synth200k] [--seeds 42,43,44]
        [--data-dir DIR] [--json]

Datasets: the two shared real ones (`../shared/datasets` beside the repository, or
`--data-dir`; skipped when absent) and three
synthetic sets from `churnops generate`'s generator (`synthetic.generate`): 3k rows with a
50-level categorical (`--levels 50`), 20k rows and 200k rows. Per seed, one 80/20 stratified
split; ours (`tune`, exactly what `churnops train` runs) is tuned, refitted and calibrated on
the 80% only; an untuned LightGBM on one-hot categories and a logistic regression are fitted on
the same 80%; every model is scored on the same 20%. Prints holdout ROC-AUC / PR-AUC means over
the seeds, whether ours is at least the best baseline on both, holdout ECE and Brier of ours
before and after calibration, and ours' training wall time (the 3-minute budget is checked on
the 200k set). Wall times depend on the machine's load: say how busy it was.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops_trainer.metrics import evaluate
from churnops_trainer.search import SearchConfig, tune
from churnops_trainer.splits import stratified_split
from churnops_trainer.target import binary_target

DATASETS = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"
BUDGET_S = 180.0
_data_dir = DATASETS  # --data-dir


@dataclass(frozen=True)
class Dataset:
    name: str
    load: Callable[[], pd.DataFrame]
    target: str
    id_column: str
    drop: tuple[str, ...] = ()
    reference: tuple[float, float] | None = None  # README's best ROC-AUC and PR-AUC


def _csv(path: str) -> Callable[[], pd.DataFrame]:
    return lambda: pd.read_csv(_data_dir / path, low_memory=False)


def _synthetic(rows: int, seed: int, levels: int = 0) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from churnops_common.synthetic import generate

        return generate(rows, seed=seed, levels=levels)

    return load


SETS = {
    "telco": Dataset(
        "telco",
        _csv("telco/Telco-Customer-Churn.csv"),
        "Churn",
        "customerID",
        reference=(0.845, 0.657),
    ),
    "bank": Dataset(
        "bank",
        _csv("bank_churn/Churn_Modelling.csv"),
        "Exited",
        "CustomerId",
        ("RowNumber", "Surname"),
        reference=(0.856, 0.689),
    ),
    "synth3k": Dataset(
        "synth3k (50-level categorical)", _synthetic(3_000, 103, 50), "churned", "customer_id"
    ),
    "synth20k": Dataset("synth20k", _synthetic(20_000, 120), "churned", "customer_id"),
    "synth200k": Dataset("synth200k", _synthetic(200_000, 1200), "churned", "customer_id"),
}
REAL = {"telco", "bank"}


def _baselines(
    train: pd.DataFrame, y_train: pd.Series, test: pd.DataFrame, features: list[str], seed: int
) -> dict[str, tuple[np.ndarray, float]]:
    """An untuned LightGBM on one-hot categories and a logistic regression (imputed, scaled)."""
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from churnops_common.ml.pipeline import as_number, looks_numeric

    numeric = [c for c in features if looks_numeric(train[c])]
    categorical = [c for c in features if c not in numeric]

    def prep(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[features].copy()
        for column in numeric:
            out[column] = as_number(out[column])
        for column in categorical:
            out[column] = out[column].astype("string").fillna("missing").astype(object)
        return out

    def columns(scale: bool) -> ColumnTransformer:
        num = make_pipeline(
            SimpleImputer(strategy="median"), *([StandardScaler()] if scale else [])
        )
        cat = OneHotEncoder(handle_unknown="ignore", min_frequency=5)
        return ColumnTransformer([("num", num, numeric), ("cat", cat, categorical)])

    models: dict[str, Any] = {
        "untuned LightGBM one-hot": make_pipeline(
            columns(False), LGBMClassifier(random_state=seed, n_jobs=1, verbose=-1)
        ),
        "logistic regression": make_pipeline(columns(True), LogisticRegression(max_iter=2000)),
    }
    x_train, x_test = prep(train), prep(test)
    results = {}
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(x_train, y_train)
        results[name] = (model.predict_proba(x_test)[:, 1], time.perf_counter() - started)
    return results


def run_split(dataset: Dataset, frame: pd.DataFrame, trials: int, seed: int) -> dict[str, Any]:
    """One seed: ours and the baselines on the same 80/20 split."""
    y = binary_target(frame, dataset.target)
    train, test = stratified_split(frame, y, 0.2, seed)
    y_train, y_test = y.loc[train.index], y.loc[test.index].to_numpy()
    exclude = (dataset.target, dataset.id_column, *dataset.drop)
    started = time.perf_counter()
    challenger = tune(train, y_train, exclude, SearchConfig(n_trials=trials, seed=seed))
    seconds = time.perf_counter() - started
    pipeline = challenger.pipeline
    after = evaluate(y_test, pipeline.churn_probability(test))
    raw = pipeline.model.predict_proba(pipeline.preprocessor.transform(test))[:, 1]
    before = evaluate(y_test, raw)
    models: dict[str, Any] = {
        "ours": {"roc_auc": after.roc_auc, "pr_auc": after.pr_auc, "seconds": seconds}
    }
    features = [c for c in frame.columns if c not in exclude]
    for name, (proba, secs) in _baselines(train, y_train, test, features, seed).items():
        m = evaluate(y_test, proba)
        models[name] = {"roc_auc": m.roc_auc, "pr_auc": m.pr_auc, "seconds": secs}
    return {
        "seed": seed,
        "models": models,
        "family": challenger.family,
        "categorical": challenger.params.get("categorical"),
        "folds": challenger.folds,
        "fold_pr_auc_std": challenger.fold_spread,
        "pruned": challenger.pruned,
        "calibration": challenger.calibration_method,
        "brier": {"before": before.brier, "after": after.brier},
        "ece": {"before": before.ece, "after": after.ece},
    }


def run(dataset: Dataset, trials: int, seeds: list[int]) -> dict[str, Any]:
    frame = dataset.load()
    splits = [run_split(dataset, frame, trials, seed) for seed in seeds]
    names = list(splits[0]["models"])
    means = {
        name: {
            key: float(np.mean([s["models"][name][key] for s in splits]))
            for key in ("roc_auc", "pr_auc", "seconds")
        }
        for name in names
    }
    baselines = [n for n in names if n != "ours"]
    best = {k: max(means[n][k] for n in baselines) for k in ("roc_auc", "pr_auc")}
    return {
        "dataset": dataset.name,
        "rows": len(frame),
        "trials": trials,
        "seeds": seeds,
        "splits": splits,
        "means": means,
        "ours_at_least_best": all(means["ours"][k] >= best[k] for k in best),
        "reference_best": dataset.reference,
        "ece": {k: float(np.mean([s["ece"][k] for s in splits])) for k in ("before", "after")},
        "brier": {k: float(np.mean([s["brier"][k] for s in splits])) for k in ("before", "after")},
        "max_train_seconds": max(s["models"]["ours"]["seconds"] for s in splits),
    }


def report(result: dict[str, Any]) -> None:
    seeds = ",".join(map(str, result["seeds"]))
    print(
        f"\n{result['dataset']} ({result['rows']} rows; 80/20 stratified, seeds {seeds};"
        f" ours with {result['trials']} trials)"
    )
    for name, m in result["means"].items():
        print(
            f"  {name:<26} ROC-AUC {m['roc_auc']:.4f}  PR-AUC {m['pr_auc']:.4f}"
            f"  {m['seconds']:7.1f} s (mean)"
        )
    if result["reference_best"]:
        ref_roc, ref_pr = result["reference_best"]
        print(f"  {'README best (5-fold CV)':<26} ROC-AUC {ref_roc:.4f}  PR-AUC {ref_pr:.4f}")
    for s in result["splits"]:
        print(
            f"    seed {s['seed']}: {s['family']}, categorical {s['categorical']},"
            f" {s['folds']} fold(s) (PR-AUC spread {s['fold_pr_auc_std']:.4f}),"
            f" {s['pruned']} pruned, calibration {s['calibration']};"
            f" ours ROC-AUC {s['models']['ours']['roc_auc']:.4f}"
            f" PR-AUC {s['models']['ours']['pr_auc']:.4f}"
        )
    e, b = result["ece"], result["brier"]
    print(
        f"  ours, holdout ECE {e['before']:.4f} -> {e['after']:.4f}, Brier {b['before']:.4f}"
        f" -> {b['after']:.4f} (before -> after calibration, mean over seeds)"
    )
    print(f"  ours at least the best baseline on both (mean): {result['ours_at_least_best']}")
    print(
        f"  ours' longest training: {result['max_train_seconds']:.1f} s"
        f" (under {BUDGET_S:.0f} s: {result['max_train_seconds'] < BUDGET_S})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument(
        "--datasets", default=",".join(SETS), help=f"comma-separated, of {','.join(SETS)}"
    )
    parser.add_argument("--seeds", default="42,43,44", help="comma-separated split seeds")
    parser.add_argument(
        "--data-dir", type=Path, default=DATASETS, help="the shared datasets' folder"
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON line at the end.")
    args = parser.parse_args()
    global _data_dir
    _data_dir = args.data_dir
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise SystemExit(f"unknown datasets {unknown}; choose from {list(SETS)}")
    if not _data_dir.is_dir() and REAL & set(names):
        print(f"shared datasets not found at {_data_dir}: skipping {sorted(REAL & set(names))}")
        names = [n for n in names if n not in REAL]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"cpus visible: {os.cpu_count()} (the machine may be shared: wall times vary)")
    results = []
    for name in names:
        result = run(SETS[name], args.trials, seeds)
        report(result)
        results.append(result)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
