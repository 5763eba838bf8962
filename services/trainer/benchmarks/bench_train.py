"""Benchmark: our tuned pipeline beside simple baselines on the real churn datasets.

    uv run python services/trainer/benchmarks/bench_train.py [--trials N] [--dataset telco|bank|all]

Each dataset gets one 80/20 stratified split (seed 42). Ours is tuned and refitted on the 80%
only (its early-stopping rows come out of that 80%); every model is scored on the same 20%.
Prints ROC-AUC / PR-AUC and wall time per model, and the README's best reference beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
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


@dataclass(frozen=True)
class Dataset:
    name: str
    path: str
    target: str
    id_column: str
    drop: tuple[str, ...]
    reference: tuple[float, float]  # README's best ROC-AUC and best PR-AUC (5-fold CV)


SETS = {
    "telco": Dataset(
        "telco", "telco/Telco-Customer-Churn.csv", "Churn", "customerID", (), (0.845, 0.657)
    ),
    "bank": Dataset(
        "bank",
        "bank_churn/Churn_Modelling.csv",
        "Exited",
        "CustomerId",
        ("RowNumber", "Surname"),
        (0.856, 0.689),
    ),
}


def _baselines(
    train: pd.DataFrame, y_train: pd.Series, test: pd.DataFrame, features: list[str], seed: int
) -> dict[str, tuple[np.ndarray, float]]:
    """Logistic regression, random forest and default LightGBM on one-hot/imputed features."""
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
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
        "logistic regression": make_pipeline(columns(True), LogisticRegression(max_iter=2000)),
        "random forest": make_pipeline(
            columns(False), RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1)
        ),
        "default LightGBM": make_pipeline(
            columns(False), LGBMClassifier(random_state=seed, n_jobs=1, verbose=-1)
        ),
    }
    x_train, x_test = prep(train), prep(test)
    results = {}
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(x_train, y_train)
        results[name] = (model.predict_proba(x_test)[:, 1], time.perf_counter() - started)
    return results


def run(dataset: Dataset, trials: int, seed: int) -> dict[str, Any]:
    frame = pd.read_csv(DATASETS / dataset.path, low_memory=False)
    y = binary_target(frame, dataset.target)
    train, test = stratified_split(frame, y, 0.2, seed)
    y_train, y_test = y.loc[train.index], y.loc[test.index]
    exclude = (dataset.target, dataset.id_column, *dataset.drop)
    rows: dict[str, Any] = {}
    started = time.perf_counter()
    challenger = tune(train, y_train, exclude, SearchConfig(n_trials=trials, seed=seed))
    seconds = time.perf_counter() - started
    ours = evaluate(y_test.to_numpy(), challenger.pipeline.churn_probability(test))
    rows["ours (tuned)"] = {
        "roc_auc": ours.roc_auc,
        "pr_auc": ours.pr_auc,
        "seconds": seconds,
        "family": challenger.family,
        "pruned": challenger.pruned,
    }
    features = [c for c in frame.columns if c not in exclude]
    for name, (proba, secs) in _baselines(train, y_train, test, features, seed).items():
        m = evaluate(y_test.to_numpy(), proba)
        rows[name] = {"roc_auc": m.roc_auc, "pr_auc": m.pr_auc, "seconds": secs}
    ref_roc, ref_pr = dataset.reference
    return {
        "dataset": dataset.name,
        "rows": len(frame),
        "trials": trials,
        "models": rows,
        "reference_best": {"roc_auc": ref_roc, "pr_auc": ref_pr},
        "meets_reference": ours.roc_auc >= ref_roc and ours.pr_auc >= ref_pr,
        "under_3_minutes": seconds < 180,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--dataset", choices=["telco", "bank", "all"], default="all")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true", help="Print one JSON line at the end.")
    args = parser.parse_args()
    if not DATASETS.is_dir():
        raise SystemExit(f"datasets not found at {DATASETS}")
    names = list(SETS) if args.dataset == "all" else [args.dataset]
    results = [run(SETS[n], args.trials, args.seed) for n in names]
    print(f"cpus visible: {os.cpu_count()} (the machine may be shared: wall times vary)")
    for result in results:
        ref = result["reference_best"]
        print(
            f"\n{result['dataset']} ({result['rows']} rows, 80/20 stratified, "
            f"{result['trials']} trials); README best: ROC-AUC {ref['roc_auc']:.3f} "
            f"PR-AUC {ref['pr_auc']:.3f}"
        )
        for name, m in result["models"].items():
            print(
                f"  {name:<22} ROC-AUC {m['roc_auc']:.4f}  PR-AUC {m['pr_auc']:.4f}  "
                f"{m['seconds']:7.1f} s"
            )
        print(
            f"  meets reference: {result['meets_reference']}, "
            f"under 3 minutes: {result['under_3_minutes']}"
        )
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
