"""The training run's figures (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import optuna
    from matplotlib.figure import Figure


def _figure(width: float = 7.0, height: float = 4.5) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def contribution_summary(contributions: pd.DataFrame) -> pd.DataFrame:
    """Mean |contribution| and mean signed contribution per input column, largest first."""
    summary = pd.DataFrame(
        {
            "mean_abs_contribution": contributions.abs().mean(),
            "mean_contribution": contributions.mean(),
        }
    ).sort_values("mean_abs_contribution", ascending=False)
    summary.index.name = "feature"
    return summary


def importance_figure(importance: pd.Series, title: str, top: int = 20) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    shown = importance.sort_values(ascending=True).tail(top)
    ax.barh(shown.index.astype(str), shown.to_numpy())
    ax.set_title(title)
    ax.set_xlabel("importance")
    return fig


def contributions_figure(summary: pd.DataFrame, top: int = 20) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    shown = summary.head(top).iloc[::-1]
    colors = ["#c0392b" if v > 0 else "#2471a3" for v in shown["mean_contribution"]]
    ax.barh(shown.index.astype(str), shown["mean_abs_contribution"], color=colors)
    ax.set_title("Mean |contribution| to churn log-odds on the holdout (red: raises on average)")
    ax.set_xlabel("mean |SHAP value|")
    return fig


def calibration_figure(y: np.ndarray, p: np.ndarray, bins: int = 10) -> Figure:
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label="challenger")
    ax.set_xlabel("mean predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Calibration on the holdout")
    ax.legend()
    return fig


def history_figure(study: optuna.Study) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    done = [t for t in study.trials if t.value is not None]
    if done:
        numbers = [t.number for t in done]
        values = [float(t.value) for t in done if t.value is not None]
        families = [str(t.params.get("family", "?")) for t in done]
        for family, marker in (("lightgbm", "o"), ("xgboost", "s"), ("linear", "^")):
            picked = [
                (n, v) for n, v, f in zip(numbers, values, families, strict=True) if f == family
            ]
            if picked:
                ax.scatter(*zip(*picked, strict=True), marker=marker, label=family)
        ax.plot(numbers, np.maximum.accumulate(values), color="black", label="best so far")
        ax.legend()
    pruned = sum(t.value is None for t in study.trials)
    ax.set_title(f"Optuna history ({len(study.trials)} trials, {pruned} pruned or failed)")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation PR-AUC")
    return fig
