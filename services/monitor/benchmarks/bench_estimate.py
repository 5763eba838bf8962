"""Benchmark: label-free performance estimates against NannyML's CBPE, and their speed.

    uv run python services/monitor/benchmarks/bench_estimate.py [--datasets DIR]
        [--nannyml-python PATH] [--chunk-rows N,M] [--big-rows N]

For each shared churn dataset (Telco, Churn_Modelling), over `--seeds` random splits: a
calibrated LightGBM (isotonic, 5-fold) is fitted on 40% of the rows; 20% is the reference (its
predictions with labels, as the trainer stores per model version); the last 40% is cut into
analysis chunks two ways: sorted by the numeric feature most correlated with the model's
score (covariate shift: each chunk holds another part of the population) and at random. Both
estimators get the same reference and the same chunks; each chunk's estimate is compared with
the realized ROC-AUC and PR-AUC once its labels are revealed. Printed: the mean absolute error
of each, and the time, per chunk size (default 500 and 1000 rows). Much of the error is the
sampling error of the realized metric itself, which neither estimator can remove: on 500-row
chunks of a 20%-churn table it is about 0.02 ROC-AUC, which is why the larger chunks are shown.

NannyML is not a dependency of the platform: `make bench` installs it into its own environment
(`.bench/nannyml`) and passes its interpreter here. Without `--nannyml-python` only our figures
are printed. `--big-rows` times one estimate of a batch that size (target: under 2 s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from churnops_monitor.estimation import estimate_batch, fit_estimator

DATASETS = {
    "telco": ("telco/Telco-Customer-Churn.csv", "Churn", ("customerID",)),
    "bank": ("bank_churn/Churn_Modelling.csv", "Exited", ("RowNumber", "CustomerId", "Surname")),
}

NANNYML_SCRIPT = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import nannyml as nml
reference = pd.read_parquet(sys.argv[1])
analysis = pd.read_parquet(sys.argv[2])
started = time.perf_counter()
estimator = nml.CBPE(
    y_pred_proba="p", y_pred="pred", y_true="y", metrics=["roc_auc", "average_precision"],
    problem_type="classification_binary", chunk_number=1,
)
estimator.fit(reference)
out = {}
for chunk, rows in analysis.groupby("chunk"):
    frame = estimator.estimate(rows.drop(columns=["chunk"])).to_df()
    frame = frame[frame[("chunk", "period")] == "analysis"]
    out[str(chunk)] = [
        float(frame[("roc_auc", "value")].iloc[0]),
        float(frame[("average_precision", "value")].iloc[0]),
    ]
print(json.dumps({"estimates": out, "seconds": time.perf_counter() - started}))
"""


def prepare(path: Path, target: str, drop: tuple[str, ...], seed: int) -> dict[str, object]:
    """Calibrated model, reference predictions and the analysis rows with their predictions."""
    import lightgbm as lgb
    from sklearn.calibration import CalibratedClassifierCV

    from churnops_common.contract import binary_target

    frame = pd.read_csv(path)
    y = binary_target(frame, target).to_numpy()
    features = frame.drop(columns=[target, *drop])
    for column in features.columns:
        if not pd.api.types.is_numeric_dtype(features[column]):
            numbers = pd.to_numeric(features[column].astype(str).str.strip(), errors="coerce")
            features[column] = (
                numbers if numbers.notna().mean() > 0.95 else features[column].astype("category")
            )
    order = np.random.default_rng(seed).permutation(len(frame))
    # 40% to fit the model, 20% its reference set, 40% cut into analysis chunks.
    two, three = 2 * len(order) // 5, 3 * len(order) // 5
    fit, ref, ana = order[:two], order[two:three], order[three:]
    model = CalibratedClassifierCV(lgb.LGBMClassifier(verbose=-1), cv=5, method="isotonic")
    model.fit(features.iloc[fit], y[fit])
    p_ref = model.predict_proba(features.iloc[ref])[:, 1]
    p_ana = model.predict_proba(features.iloc[ana])[:, 1]
    numeric = features.iloc[ana].select_dtypes("number")
    strength = numeric.apply(lambda c: abs(np.corrcoef(c.fillna(c.median()), p_ana)[0, 1]))
    return {
        "p_ref": p_ref,
        "y_ref": y[ref],
        "p_ana": p_ana,
        "y_ana": y[ana],
        "shift_by": numeric[strength.idxmax()].to_numpy(),
        "shift_name": str(strength.idxmax()),
    }


def chunks(data: dict[str, object], rows: int, seed: int) -> dict[str, np.ndarray]:
    """chunk name -> row positions: sorted by the strong feature, and random."""
    n = len(data["p_ana"])  # type: ignore[arg-type]
    by_feature = np.argsort(np.asarray(data["shift_by"]), kind="stable")
    at_random = np.random.default_rng(seed).permutation(n)
    out = {}
    for label, order in (("sorted", by_feature), ("random", at_random)):
        for i, start in enumerate(range(0, n - rows + 1, rows)):
            out[f"{label}-{i}"] = order[start : start + rows]
    return out


def ours(data: dict[str, object], parts: dict[str, np.ndarray]) -> tuple[dict, float]:
    started = time.perf_counter()
    estimator = fit_estimator(np.asarray(data["p_ref"]), np.asarray(data["y_ref"]))
    p = np.asarray(data["p_ana"])
    out = {}
    for name, rows in parts.items():
        estimates = estimate_batch(estimator, p[rows], 0.5, 100)
        out[name] = [estimates["roc_auc"].value, estimates["pr_auc"].value]
    return out, time.perf_counter() - started


def nannyml(
    python: str, data: dict[str, object], parts: dict[str, np.ndarray]
) -> tuple[dict, float]:
    p_ref, p_ana = np.asarray(data["p_ref"]), np.asarray(data["p_ana"])
    reference = pd.DataFrame({"p": p_ref, "pred": (p_ref >= 0.5).astype(int), "y": data["y_ref"]})
    rows = [
        pd.DataFrame({"p": p_ana[idx], "pred": (p_ana[idx] >= 0.5).astype(int), "chunk": name})
        for name, idx in parts.items()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, ana_path = Path(tmp) / "reference.parquet", Path(tmp) / "analysis.parquet"
        reference.to_parquet(ref_path)
        pd.concat(rows, ignore_index=True).to_parquet(ana_path)
        result = subprocess.run(  # noqa: S603 - the benchmark environment's own interpreter
            [python, "-c", NANNYML_SCRIPT, str(ref_path), str(ana_path)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    return payload["estimates"], float(payload["seconds"])


def errors(estimates: dict, data: dict[str, object], parts: dict[str, np.ndarray]) -> dict:
    y, p = np.asarray(data["y_ana"]), np.asarray(data["p_ana"])
    out: dict[str, list[float]] = {"roc_auc": [], "pr_auc": []}
    for name, idx in parts.items():
        if len(np.unique(y[idx])) < 2:
            continue
        roc, pr = estimates[name]
        out["roc_auc"].append(abs(roc - roc_auc_score(y[idx], p[idx])))
        out["pr_auc"].append(abs(pr - average_precision_score(y[idx], p[idx])))
    return {k: float(np.mean(v)) for k, v in out.items()}


def compare(
    args: argparse.Namespace,
    path: Path,
    target: str,
    drop: tuple[str, ...],
    seed: int,
    sizes: list[int],
) -> dict[int, dict[str, object]]:
    """Both estimators on one split, per chunk size: mean absolute errors and seconds."""
    data = prepare(path, target, drop, seed)
    out: dict[int, dict[str, object]] = {}
    for rows in sizes:
        parts = chunks(data, rows, seed)
        mine, my_seconds = ours(data, parts)
        mine_err = errors(mine, data, parts)
        theirs_err = {"roc_auc": float("nan"), "pr_auc": float("nan")}
        their_seconds = float("nan")
        if args.nannyml_python:
            theirs, their_seconds = nannyml(args.nannyml_python, data, parts)
            theirs_err = errors(theirs, data, parts)
        out[rows] = {
            "chunks": len(parts),
            "ours_roc": mine_err["roc_auc"],
            "nml_roc": theirs_err["roc_auc"],
            "ours_pr": mine_err["pr_auc"],
            "nml_pr": theirs_err["pr_auc"],
            "ours_s": my_seconds,
            "nml_s": their_seconds,
            "shift": data["shift_name"],
        }
    return out


def big_batch(rows: int) -> float:
    rng = np.random.default_rng(0)
    reference = rng.beta(1.2, 3.5, 5000)
    estimator = fit_estimator(reference, (rng.random(5000) < reference).astype(int))
    batch = rng.beta(1.2, 3.5, rows)
    started = time.perf_counter()
    estimate_batch(estimator, batch, 0.5, 1000)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"
    parser.add_argument("--datasets", type=Path, default=default)
    parser.add_argument("--nannyml-python", default=None, help="interpreter with nannyml")
    parser.add_argument("--chunk-rows", default="500,1000", help="comma-separated sizes")
    parser.add_argument(
        "--seeds", type=int, default=9, help="splits averaged over (fewer: cells of noise)"
    )
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not args.datasets.is_dir():
        sys.exit(f"datasets not found at {args.datasets}; pass --datasets DIR")
    sizes = [int(n) for n in str(args.chunk_rows).split(",") if n.strip()]
    runs = {
        name: [
            compare(args, args.datasets / relative, target, drop, seed, sizes)
            for seed in range(args.seed, args.seed + args.seeds)
        ]
        for name, (relative, target, drop) in DATASETS.items()
    }
    for size in sizes:
        print(
            f"\nmean absolute error of the estimate against the realized metric, {size}-row chunks"
        )
        print(
            f"{'dataset':8s} {'chunks':>6s}  {'ours ROC':>9s} {'NML ROC':>9s}  {'ours PR':>9s}"
            f" {'NML PR':>9s}  {'ours s':>7s} {'NML s':>7s}"
        )
        for name, per_seed in runs.items():
            rows = [run[size] for run in per_seed]
            mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "shift"}
            print(
                f"{name:8s} {int(mean['chunks']):6d}  {mean['ours_roc']:9.4f}"
                f" {mean['nml_roc']:9.4f}  {mean['ours_pr']:9.4f} {mean['nml_pr']:9.4f}"
                f"  {mean['ours_s']:7.2f} {mean['nml_s']:7.2f}   (sorted by {rows[0]['shift']})"
            )
    if not args.nannyml_python:
        print("NannyML figures: pass --nannyml-python (make bench builds .bench/nannyml)")
    print(f"one estimate of a {args.big_rows:,}-row batch: {big_batch(args.big_rows):.2f} s")


if __name__ == "__main__":
    main()
