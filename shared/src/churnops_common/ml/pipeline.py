"""`ChurnPipeline`: preprocessing + a gradient-boosted model, as one picklable object.

The trainer fits and registers it (MLflow `sklearn` flavour, plus a `.joblib` copy under
`models/pipelines/`); the scorer loads it from the registry alias and calls `predict_proba` and
`contributions`. It lives in the shared package so the scorer never imports trainer code.

Preprocessing keeps one output column per input feature (no one-hot): numbers stored as text
are parsed, categoricals become pandas categories with the training categories fixed (an unseen
value becomes missing), and the models handle missing values and categories natively. So the
models' own SHAP-style contributions map straight back to input columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

Family = Literal["lightgbm", "xgboost"]
_NAME_RE = re.compile(r"[^0-9A-Za-z_]+")


def clean_name(name: str) -> str:
    """A model-safe feature name: LightGBM rejects JSON specials, XGBoost `[`, `]`, `<`."""
    cleaned = _NAME_RE.sub("_", str(name)).strip("_")
    return cleaned or "feature"


def as_number(series: pd.Series) -> pd.Series:
    """Numbers, including numbers stored as text with blanks (Telco's TotalCharges)."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    text = series.astype("string").str.strip()
    numbers = pd.to_numeric(text.mask(text == ""), errors="coerce")
    return pd.Series(numbers, index=series.index, name=series.name, dtype="float64")


def looks_numeric(series: pd.Series, min_share: float = 0.95) -> bool:
    """True when nearly every non-blank value parses as a number."""
    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series):
        return True
    text = series.dropna().astype("string").str.strip()
    text = text[text != ""]
    if text.empty:
        return False
    return bool(pd.to_numeric(text, errors="coerce").notna().mean() >= min_share)


@dataclass
class TabularPreprocessor:
    """Learns column roles and categories on training data; transforms any batch the same way."""

    numeric: list[str] = field(default_factory=list)
    categorical: dict[str, list[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # input column -> model feature name

    @property
    def input_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def feature_names(self) -> list[str]:
        return [self.names[c] for c in self.input_columns]

    @classmethod
    def fit(cls, frame: pd.DataFrame, exclude: tuple[str, ...] = ()) -> TabularPreprocessor:
        numeric: list[str] = []
        categorical: dict[str, list[str]] = {}
        for column in frame.columns:
            if column in exclude:
                continue
            series = frame[column]
            if series.isna().all():
                continue  # nothing to learn from an all-null column
            if looks_numeric(series):
                numeric.append(column)
            else:
                values = series.dropna().astype("string").str.strip()
                categorical[column] = sorted(set(values) - {""})
        names: dict[str, str] = {}
        for column in [*numeric, *categorical]:
            base = clean_name(column)
            name, n = base, 1
            while name in names.values():
                n += 1
                name = f"{base}_{n}"
            names[column] = name
        return cls(numeric, categorical, names)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model input: extra columns ignored, missing ones all-NaN, column order fixed."""
        out: dict[str, Any] = {}
        n = len(frame)
        for column in self.numeric:
            out[self.names[column]] = (
                as_number(frame[column]) if column in frame else np.full(n, np.nan)
            )
        for column, categories in self.categorical.items():
            dtype = pd.CategoricalDtype(categories)
            if column in frame:
                values = frame[column].astype("string").str.strip()
                # An unseen category becomes missing (explicitly: pandas 4 will refuse it).
                known = values.where(values.isin(categories))
                out[self.names[column]] = pd.Categorical(known, dtype=dtype)
            else:
                out[self.names[column]] = pd.Categorical([None] * n, dtype=dtype)
        return pd.DataFrame(out, index=frame.index)


@dataclass
class ChurnPipeline:
    """Preprocessing + model. `predict_proba` gives P(churn) per row."""

    preprocessor: TabularPreprocessor
    model: Any  # a fitted LGBMClassifier or XGBClassifier
    family: Family
    threshold: float = 0.5
    id_column: str | None = None
    target_column: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    # sklearn-style attributes, so the MLflow sklearn flavour and tools accept it.
    _estimator_type = "classifier"
    classes_ = np.array([0, 1])

    @property
    def input_columns(self) -> list[str]:
        return self.preprocessor.input_columns

    def fit(self, *_: Any, **__: Any) -> ChurnPipeline:  # pragma: no cover - fitted by trainer
        raise NotImplementedError("ChurnPipeline is built fitted by the trainer")

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, 2) like sklearn: column 1 is the churn probability."""
        p = np.asarray(self.model.predict_proba(self.preprocessor.transform(frame))[:, 1])
        return np.column_stack([1.0 - p, p])

    def churn_probability(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(frame)[:, 1]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (self.churn_probability(frame) >= self.threshold).astype(int)

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-row, per-input-column contributions to the log-odds (the models' own SHAP values).

        Columns are the input column names; the bias term is left out. Each row's contributions
        plus the bias add up to the model's raw margin.
        """
        features = self.preprocessor.transform(frame)
        if self.family == "lightgbm":
            raw = self.model.booster_.predict(features, pred_contrib=True)
        else:
            import xgboost as xgb

            matrix = xgb.DMatrix(features, enable_categorical=True)
            raw = self.model.get_booster().predict(matrix, pred_contribs=True)
        values = np.asarray(raw)[:, :-1]
        return pd.DataFrame(values, columns=self.input_columns, index=frame.index)
