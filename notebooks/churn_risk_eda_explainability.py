# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Churn risk: EDA and explainability
#
# Where the feature-engineering decisions and the EDA assumptions are reviewed, and where the
# champion is explained. It reads the platform's own state: the champion from the registry (its
# `champion` alias), the table it was trained on, its latest predictions files, and the PSI the
# quality service recorded. `make notebook` runs it headless against the embedded demo's state
# (`churnops demo` first) and writes the HTML to the reports bucket.
#
# Settings come from the environment, as for every ChurnOps process: `CHURNOPS_HOME` for an
# embedded home, or the stack's settings. `CHURNOPS_NOTEBOOK_DATASET` (a CSV or Parquet file)
# replaces the training data for the EDA part.
#
# Edit the paired `.py` file (jupytext percent format) or the `.ipynb`; keep them in sync with
# `jupytext --sync notebooks/churn_risk_eda_explainability.ipynb`. Outputs are never committed.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sqlalchemy as sa
from IPython.display import Markdown, display
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, roc_auc_score

from churnops_common.bus.local_bus import LocalBus
from churnops_common.contract import apply_contract, binary_target, load_contract, target_codes
from churnops_common.db.tables import feature_psi, quality_runs, scoring_runs
from churnops_common.ml.pipeline import TabularPreprocessor, looks_numeric
from churnops_common.runtime import Runtime
from churnops_common.settings import get_settings
from churnops_common.storage import parse_uri
from churnops_common.tabular import read_table
from churnops_scorer.models import champion
from churnops_trainer.outcome import training_data_key

pd.set_option("display.max_columns", 30)
plt.rcParams.update({"figure.dpi": 90, "axes.spines.top": False, "axes.spines.right": False})
SAMPLE_ROWS = 3000  # rows explained for the global view: TreeSHAP is exact, not free
RNG = np.random.default_rng(0)

settings = get_settings()
runtime = Runtime.from_settings(settings, LocalBus({}))
store, engine = runtime.store, runtime.engine
# The model's data contract names its target and id (the settings only seed the first one).
settings = apply_contract(settings, load_contract(store, settings))
TARGET, ID = settings.target_column, settings.id_column


def read_uri(uri: str) -> pd.DataFrame:
    bucket, key = parse_uri(uri)
    with store.local_path(bucket, key) as path:
        return read_table(path)


model = champion(runtime)
pipeline = model.pipeline
display(
    Markdown(
        f"**Champion**: `{model.uri}` ({pipeline.family}), holdout PR-AUC "
        f"{model.holdout_pr_auc if model.holdout_pr_auc is not None else 'not recorded'}; "
        f"mode `{settings.churnops_mode}`, state in `{settings.churnops_home}`."
    )
)

# %% [markdown]
# ## 1. The training data
#
# The table the champion was fitted on (kept in the models bucket at registration), unless
# `CHURNOPS_NOTEBOOK_DATASET` names another one.

# %%
dataset = os.environ.get("CHURNOPS_NOTEBOOK_DATASET")
if dataset:
    train = read_table(Path(dataset))
    source = dataset
else:
    source = f"s3://{settings.minio_models_bucket}/{training_data_key(model.name, model.version)}"
    train = read_uri(source)
y = binary_target(train, TARGET)  # the platform's one target vocabulary: 1 = churned
features = [c for c in train.columns if c not in (ID, TARGET)]
display(Markdown(f"`{source}`: {len(train):,} rows, {len(features)} feature columns."))
summary = pd.DataFrame(
    {
        "rows": [len(train)],
        "churners": [int(y.sum())],
        "churn rate": [round(float(y.mean()), 4)],
        "duplicate ids": [int(train[ID].duplicated().sum()) if ID in train else None],
    }
)
summary

# %%
fig, ax = plt.subplots(figsize=(4, 3))
y.value_counts().sort_index().plot.bar(ax=ax, color=["#4c72b0", "#dd8452"])
ax.set_title(f"Class balance (churn rate {y.mean():.1%})")
ax.set_xlabel(TARGET)
ax.set_ylabel("customers")
plt.show()

# %% [markdown]
# ### Missingness
#
# The preprocessor keeps missing values as missing: both LightGBM and XGBoost learn a default
# direction for them at every split, so nothing is imputed. A column that is entirely empty
# carries nothing to learn and is dropped.

# %%
missing = train[features].isna().mean().sort_values(ascending=False)
missing.to_frame("missing share").T

# %%
fig, ax = plt.subplots(figsize=(8, 3))
missing.plot.bar(ax=ax, color="#8172b3")
ax.set_title("Share of missing values per column")
ax.set_ylim(0, max(0.05, float(missing.max()) * 1.2))
plt.show()

# %% [markdown]
# ### Distributions by class
#
# Numeric columns, churners against the others (densities, so the class sizes do not hide the
# shapes).

# %%
numeric = [c for c in features if looks_numeric(train[c])]
categorical = [c for c in features if c not in numeric]
cols = 4
rows = int(np.ceil(len(numeric) / cols)) or 1
fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
for ax, column in zip(axes.flat, numeric, strict=False):
    values = pd.to_numeric(train[column], errors="coerce")
    for label, color in ((0, "#4c72b0"), (1, "#dd8452")):
        ax.hist(values[y == label].dropna(), bins=30, density=True, alpha=0.55, color=color,
                label="churned" if label else "stayed")  # fmt: skip
    ax.set_title(column, fontsize=9)
for ax in list(axes.flat)[len(numeric) :]:
    ax.axis("off")
axes.flat[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
fig, axes = plt.subplots(1, max(1, len(categorical)), figsize=(3.2 * max(1, len(categorical)), 3))
for ax, column in zip(np.atleast_1d(axes), categorical, strict=False):
    rate = y.groupby(train[column].astype("string").fillna("(missing)")).mean().sort_values()
    rate.plot.barh(ax=ax, color="#55a868")
    ax.axvline(float(y.mean()), color="grey", linestyle="--", linewidth=1)
    ax.set_title(f"churn rate by {column}", fontsize=9)
    ax.set_ylabel("")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### The strongest associations with churn
#
# One scale for every column: the ROC-AUC of the column alone as a score (numbers as they are,
# a category by its churn rate), folded so that 0.5 means "no association" and 1.0 "separates
# the classes perfectly". It sees monotone and categorical effects, not interactions.


# %%
def single_column_auc(column: str) -> float:
    if column in numeric:
        score = pd.to_numeric(train[column], errors="coerce")
    else:
        key = train[column].astype("string").fillna("(missing)")
        score = key.map(y.groupby(key).mean())
    known = score.notna() & y.notna()
    if known.sum() < 2 or y[known].nunique() < 2:
        return 0.5
    auc = roc_auc_score(y[known], score[known])
    return float(max(auc, 1 - auc))


association = pd.Series({c: single_column_auc(c) for c in features}).sort_values()
fig, ax = plt.subplots(figsize=(6, 0.3 * len(association) + 1))
association.plot.barh(ax=ax, color="#c44e52")
ax.axvline(0.5, color="grey", linewidth=1)
ax.set_xlim(0.45, 1)
ax.set_title("Association with churn (single-column ROC-AUC, folded)")
plt.show()

# %% [markdown]
# ## 2. What the preprocessor decides, and why
#
# `TabularPreprocessor.fit` learns each column's role from the training table:
#
# - **numbers**, including numbers stored as text (at least 95% of the non-empty values parse
#   as numbers: exports often quote them); the rest become missing, not errors;
# - **categories**: every other column, its known values sorted; a value unseen in training
#   becomes missing at scoring time (the quality service warns about unseen categories);
# - **dropped**: the id and the target (never features), and columns that are entirely empty.
#
# The table below refits it here and sets it beside the champion's own, so a difference (a
# column that changed role between the champion's training and this data) shows.

# %%
refit = TabularPreprocessor.fit(train, exclude=(ID, TARGET))
champion_pre = pipeline.preprocessor


def role(pre: TabularPreprocessor, column: str) -> str:
    if column in pre.numeric:
        stored_as_text = not pd.api.types.is_numeric_dtype(train[column])
        return "number (stored as text)" if stored_as_text else "number"
    if column in pre.categorical:
        return f"category ({len(pre.categorical[column])} values)"
    return "dropped"


decisions = pd.DataFrame(
    {
        "dtype in the file": [str(train[c].dtype) for c in train.columns],
        "this data": [role(refit, c) for c in train.columns],
        "champion": [role(champion_pre, c) for c in train.columns],
    },
    index=train.columns,
)
decisions.loc[[c for c in (ID, TARGET) if c in decisions.index], ["this data", "champion"]] = (
    "dropped (id/target)"
)
decisions

# %% [markdown]
# ## 3. The champion explained
#
# ### Global importance (TreeSHAP)
#
# `ChurnPipeline.contributions` asks the model itself for its SHAP values (LightGBM's and
# XGBoost's `pred_contrib`: exact TreeSHAP, in log-odds). The mean absolute contribution per
# input column ranks what the model relies on overall.

# %%
sample = train.sample(min(SAMPLE_ROWS, len(train)), random_state=0)
shap = pipeline.contributions(sample)
importance = shap.abs().mean().sort_values()
fig, ax = plt.subplots(figsize=(6, 0.3 * len(importance) + 1))
importance.plot.barh(ax=ax, color="#4c72b0")
ax.set_title(f"Mean |SHAP| (log-odds), {len(sample):,} training rows")
plt.show()

# %%
top = list(importance.index[::-1][:8])
fig, ax = plt.subplots(figsize=(7, 0.45 * len(top) + 1))
for row, column in enumerate(reversed(top)):
    values = shap[column].to_numpy()
    raw = pd.to_numeric(sample[column], errors="coerce") if column in numeric else None
    if raw is not None and raw.notna().any():
        color = (raw.rank(pct=True)).fillna(0.5).to_numpy()
    else:
        color = np.full(len(values), 0.5)
    jitter = RNG.normal(0, 0.08, len(values))
    ax.scatter(values, row + jitter, c=color, cmap="coolwarm", s=4, alpha=0.5)
ax.set_yticks(range(len(top)), list(reversed(top)))
ax.axvline(0, color="grey", linewidth=1)
ax.set_xlabel("SHAP value (log-odds; red = high value of a numeric column)")
ax.set_title("Contributions per customer, top columns")
plt.show()

# %% [markdown]
# ### Dependence on the top features
#
# How a column's value moves its contribution: a monotone cloud is a simple effect; a wide
# vertical spread at one value is an interaction with other columns.

# %%
top3 = top[:3]
fig, axes = plt.subplots(1, len(top3), figsize=(4.5 * len(top3), 3.2), squeeze=False)
for ax, column in zip(axes.flat, top3, strict=True):
    if column in numeric:
        ax.scatter(pd.to_numeric(sample[column], errors="coerce"), shap[column], s=5, alpha=0.4)
    else:
        groups = sample[column].astype("string").fillna("(missing)")
        labels = sorted(groups.unique())
        ax.boxplot([shap[column][groups == g] for g in labels], showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, fontsize=8)
    ax.axhline(0, color="grey", linewidth=1)
    ax.set_title(f"dependence: {column}", fontsize=10)
    ax.set_ylabel("SHAP value")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Three customers, explained
#
# The three highest-risk customers of the champion's latest predictions file. Their TreeSHAP
# contributions, recomputed here from the scored input, set beside the reasons the scorer wrote
# (`reason_1..3`). With `SCORER_REASONS=shap` the scorer writes these same values; with the
# default `path` it uses decision-path attribution, which agrees with SHAP on the leading
# reasons for most rows: the table shows where they agree.

# %%
with engine.connect() as conn:
    runs = pd.DataFrame(
        conn.execute(
            sa.select(scoring_runs)
            .where(scoring_runs.c.model_version == model.version)
            .order_by(scoring_runs.c.created_at.desc())
        ).mappings()
    )
latest = runs.iloc[0]
predictions = read_uri(latest["predictions_uri"])
predictions[ID] = predictions[ID].astype(str)
inputs = read_uri(f"s3://{latest['input_bucket']}/{latest['input_key']}")
inputs[ID] = inputs[ID].astype(str)
chosen = predictions.nlargest(3, "churn_probability")
rows = inputs.set_index(ID).loc[chosen[ID]].reset_index()
local = pipeline.contributions(rows)
display(Markdown(f"Predictions: `{latest['predictions_uri']}` (model v{latest['model_version']})."))

fig, axes = plt.subplots(1, 3, figsize=(15, 3.4))
comparison = []
for ax, (i, customer) in zip(axes, enumerate(chosen.itertuples(index=False)), strict=True):
    values = local.iloc[i].sort_values()
    shown = pd.concat([values.head(3), values.tail(5)]).drop_duplicates()
    ax.barh(shown.index, shown.to_numpy(), color=np.where(shown > 0, "#c44e52", "#4c72b0"))
    ax.set_title(f"{getattr(customer, ID)}: p={customer.churn_probability:.2f}", fontsize=10)
    ax.axvline(0, color="grey", linewidth=1)
    shap_top = list(values.index[::-1][:3])
    # Only risk-raising contributions above SCORER_REASON_FLOOR are reasons: up to three.
    written = [r for k in (1, 2, 3) if isinstance(r := getattr(customer, f"reason_{k}"), str)]
    comparison.append(
        {
            ID: getattr(customer, ID),
            "churn probability": round(float(customer.churn_probability), 3),
            "reasons in the predictions file": ", ".join(map(str, written)),
            "TreeSHAP top 3": ", ".join(shap_top),
            "leading reason agrees": bool(written) and shap_top[0] == written[0],
            "same top 3": set(shap_top[: len(written)]) == set(written),
        }
    )
fig.suptitle("Local explanations (SHAP, log-odds): red pushes towards churn")
fig.tight_layout()
plt.show()
pd.DataFrame(comparison)

# %% [markdown]
# ### Calibration
#
# Whether a predicted 30% means about 30% of such customers churn: the champion's latest
# labelled predictions file (a batch that arrived with its outcomes), in deciles of predicted
# probability. If that batch was part of the champion's training data, the curve is optimistic:
# the cell says so.

# %%
labelled = runs[runs["roc_auc"].notna()]
if labelled.empty:
    display(Markdown("No labelled batch was scored by the champion: no calibration curve yet."))
else:
    run = labelled.iloc[0]
    scored = read_uri(run["predictions_uri"])
    codes, _ = target_codes(scored[TARGET])
    outcome = pd.Series(codes, index=scored.index)
    known = outcome >= 0
    prob = scored.loc[known, "churn_probability"].to_numpy()
    observed, predicted = calibration_curve(outcome[known], prob, n_bins=10, strategy="quantile")
    seen = scored[ID].astype(str).isin(train[ID].astype(str)).mean() if ID in train else 0.0
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label=f"v{run['model_version']}")
    ax.set_xlabel("predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title(f"Calibration, Brier {brier_score_loss(outcome[known], prob):.3f}")
    ax.legend()
    plt.show()
    display(
        Markdown(
            f"`{run['predictions_uri']}`: {int(known.sum()):,} labelled rows;"
            f" {seen:.0%} of them are in the champion's training data."
        )
    )

# %% [markdown]
# ### PSI of the latest batch against the baseline
#
# The quality service's per-feature PSI (fixed reference bins from the baseline profile) for the
# latest accepted batch to score. 0.1 is a moderate shift; `PSI_THRESHOLD` raises `PsiBreached`
# and with it a retrain.

# %%
with engine.connect() as conn:
    last_run = conn.execute(
        sa.select(quality_runs.c.run_id, quality_runs.c.object_key, quality_runs.c.max_psi)
        .where(quality_runs.c.kind == "new_data", quality_runs.c.max_psi.is_not(None))
        .order_by(quality_runs.c.created_at.desc())
        .limit(1)
    ).first()
    psi = (
        pd.DataFrame(
            conn.execute(
                sa.select(feature_psi.c.feature, feature_psi.c.psi).where(
                    feature_psi.c.run_id == last_run.run_id
                )
            ).all(),
            columns=["feature", "psi"],
        ).set_index("feature")["psi"]
        if last_run is not None
        else pd.Series(dtype=float)
    )
if psi.empty:
    display(Markdown("No batch has been checked against a baseline yet."))
else:
    psi = psi.sort_values()
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(psi) + 1))
    colors = np.where(psi >= settings.psi_threshold, "#c44e52", "#55a868")
    ax.barh(psi.index, psi.to_numpy(), color=colors)
    ax.axvline(settings.psi_threshold, color="black", linestyle="--", label="PSI_THRESHOLD")
    ax.axvline(0.1, color="grey", linestyle=":", label="moderate shift")
    ax.set_title(f"PSI per feature: {last_run.object_key}")
    ax.legend()
    plt.show()
