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
    ax.set_title("What moves the churn score on the holdout (red: raises it on average)")
    ax.set_xlabel("mean |contribution to the churn log-odds|")
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
    """Completed trials by family and the best so far; the title counts trials by state (a
    pruned trial carries its last intermediate value, so a value does not mean complete)."""
    from optuna.trial import TrialState

    fig = _figure()
    ax = fig.add_subplot()
    done = [t for t in study.trials if t.state == TrialState.COMPLETE and t.value is not None]
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
    pruned = sum(t.state == TrialState.PRUNED for t in study.trials)
    failed = sum(t.state == TrialState.FAIL for t in study.trials)
    ax.set_title(
        f"Optuna history: {len(study.trials)} trials, {len(done)} complete, {pruned} pruned,"
        f" {failed} failed"
    )
    ax.set_xlabel("trial")
    ax.set_ylabel("validation PR-AUC")
    return fig


def roc_figure(y: np.ndarray, p: np.ndarray) -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.plot(fpr, tpr, label=f"challenger (ROC-AUC {roc_auc_score(y, p):.3f})")
    ax.set_xlabel("false positive rate (stayers flagged)")
    ax.set_ylabel("true positive rate (churners caught)")
    ax.set_title("ROC curve on the holdout")
    ax.legend(loc="lower right")
    return fig


def pr_figure(y: np.ndarray, p: np.ndarray, threshold: float) -> Figure:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, p)
    flagged = p >= threshold
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot()
    ax.axhline(float(np.mean(y)), linestyle="--", color="grey", label="churn rate (chance)")
    ax.step(recall, precision, where="post", label=f"PR-AUC {average_precision_score(y, p):.3f}")
    if flagged.any():
        hit = float(np.mean(y[flagged]))
        caught = float(np.sum(y[flagged]) / max(np.sum(y), 1))
        ax.plot([caught], [hit], "o", color="black", label=f"decision threshold {threshold:.2f}")
    ax.set_xlabel("recall (share of churners caught)")
    ax.set_ylabel("precision (share of flagged who churn)")
    ax.set_title("Precision-recall curve on the holdout")
    ax.legend(loc="upper right")
    return fig


def confusion_figure(y: np.ndarray, p: np.ndarray, threshold: float) -> Figure:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1])
    fig = _figure(5.5, 4.8)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    names = ["stays", "churns"]
    ax.set_xticks([0, 1], [f"predicted {n}" for n in names])
    ax.set_yticks([0, 1], [f"actually {n}" for n in names])
    peak = matrix.max() or 1
    for (row, col), count in np.ndenumerate(matrix):
        share = count / max(matrix.sum(), 1)
        color = "white" if count > peak / 2 else "black"
        ax.text(col, row, f"{count}\n({share:.1%})", ha="center", va="center", color=color)
    ax.set_title(f"Holdout at the decision threshold {threshold:.2f}")
    return fig


def gains_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Per decile of customers ranked by churn probability (highest first): the share of all
    churners found within it (cumulative gains) and the lift over contacting at random."""
    y = np.asarray(y, dtype=float)
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    total = max(float(y.sum()), 1.0)
    rows = []
    for k in range(1, bins + 1):
        top = order[: round(len(y) * k / bins)]
        share = len(top) / max(len(y), 1)
        gain = float(y[top].sum()) / total
        rows.append({"contacted": share, "churners_found": gain, "lift": gain / share})
    return pd.DataFrame(rows)


def gains_figure(y: np.ndarray, p: np.ndarray) -> Figure:
    table = gains_table(y, p)
    fig = _figure(9.0, 4.5)
    gains, lift = fig.subplots(1, 2)
    shares = np.concatenate([[0.0], table["contacted"].to_numpy()])
    found = np.concatenate([[0.0], table["churners_found"].to_numpy()])
    gains.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    gains.plot(shares, found, marker="o", label="by churn probability")
    gains.set_xlabel("share of customers contacted (riskiest first)")
    gains.set_ylabel("share of churners reached")
    gains.set_title("Cumulative gains")
    gains.legend(loc="lower right")
    lift.axhline(1.0, linestyle="--", color="grey")
    lift.plot(table["contacted"], table["lift"], marker="o")
    lift.set_xlabel("share of customers contacted (riskiest first)")
    lift.set_ylabel("lift over random")
    lift.set_title(f"Lift (top decile: {table['lift'].iloc[0]:.1f}x)")
    return fig


def family_trials(study: optuna.Study, family: str) -> list[optuna.trial.FrozenTrial]:
    """The complete trials of one model family (a search without a family is all one)."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in complete if t.params.get("family", family) == family]


def param_importances(study: optuna.Study, family: str) -> pd.Series:
    """Optuna's parameter importances (fANOVA) over the complete trials of the chosen model
    family: the search's parameters depend on the family, and importances need parameters
    every trial shares. Empty when too few trials vary."""
    import optuna

    trials = family_trials(study, family)
    shared = [n for n in trials[0].params if n != "family"] if trials else []
    shared = [n for n in shared if all(n in t.params for t in trials)]
    varied = [n for n in shared if len({repr(t.params[n]) for t in trials}) > 1]
    if len(trials) < 2 or not varied:
        return pd.Series(dtype="float64", name="importance")
    sub = optuna.create_study(direction=study.direction)
    sub.add_trials(trials)
    values = optuna.importance.get_param_importances(sub, params=varied)
    return pd.Series(values, name="importance", dtype="float64")


def param_importance_figure(importances: pd.Series, family: str, trials: int) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    if importances.empty:
        ax.text(0.5, 0.5, "too few varied trials to rank parameters", ha="center", va="center")
        ax.set_axis_off()
    else:
        shown = importances.sort_values(ascending=True)
        ax.barh(shown.index.astype(str), shown.to_numpy())
        ax.set_xlabel("share of the variance of validation PR-AUC (fANOVA)")
    ax.set_title(f"Optuna parameter importances ({family}, {trials} complete trials)")
    return fig
