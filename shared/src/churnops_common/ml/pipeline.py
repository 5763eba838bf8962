"""`ChurnPipeline`: preprocessing + a model (gradient-boosted trees, or a logistic regression
where that is best), as one picklable object.

The trainer fits and registers it (MLflow `sklearn` flavour, plus a `.joblib` copy under
`models/pipelines/`); the scorer loads it from the registry alias and calls `predict_proba` and
`contributions`. It lives in the shared package so the scorer never imports trainer code.

Preprocessing keeps one output column per input feature (no one-hot): numbers stored as text
are parsed, categoricals become pandas categories with the training categories fixed (an unseen
value becomes missing), and the models handle missing values and categories natively. So the
models' own SHAP-style contributions map straight back to input columns. The trainer's choices
keep that shape: levels seen too rarely are folded into one `RARE_LEVEL` category, a
high-cardinality column may be target-encoded (one number per category, still one column), and
"one-hot" is the models' one-vs-rest categorical split, not extra columns.

The probability is the model's, passed through a fitted monotone `Calibrator` when there is one;
ranking and reasons are the model's own either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

Family = Literal["lightgbm", "xgboost", "linear"]
RARE_LEVEL = "__rare__"
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
    grouped: dict[str, list[str]] = field(default_factory=dict)  # levels read as RARE_LEVEL
    # Target-encoded columns: one number per category (in `categorical` order), then the number
    # for a missing or unseen value. The model sees that number instead of the category.
    encoded: dict[str, list[float]] = field(default_factory=dict)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Pipelines pickled before grouping and encoding existed load with neither."""
        self.__dict__.update({"grouped": {}, "encoded": {}, **state})

    @property
    def input_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def model_categorical(self) -> dict[str, list[str]]:
        """The columns the model reads as categories (target-encoded ones are numbers)."""
        return {c: v for c, v in self.categorical.items() if c not in self.encoded}

    def lookup(self, column: str) -> tuple[list[str], np.ndarray]:
        """Every known level of a categorical column and its category code (grouped levels
        share the code of RARE_LEVEL): what a reader matching raw text needs."""
        categories = self.categorical[column]
        grouped = self.grouped.get(column, [])
        rare = categories.index(RARE_LEVEL) if grouped else -1
        codes = np.array([*range(len(categories)), *([rare] * len(grouped))], dtype=np.float64)
        return [*categories, *grouped], codes

    def model_values(self, column: str, codes: np.ndarray) -> np.ndarray:
        """Category codes (NaN: missing or unseen) as the model reads them."""
        table = self.encoded.get(column)
        if table is None:
            return codes
        values = np.asarray(table, dtype=np.float64)
        missing = np.isnan(codes)
        return np.where(missing, values[-1], values[np.where(missing, 0, codes).astype(np.int64)])

    @property
    def feature_names(self) -> list[str]:
        return [self.names[c] for c in self.input_columns]

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, exclude: tuple[str, ...] = (), min_level_rows: int = 1
    ) -> TabularPreprocessor:
        """Column roles and categories; levels seen in fewer than `min_level_rows` rows are
        grouped into RARE_LEVEL (when two or more are: one alone is left as it is)."""
        numeric: list[str] = []
        categorical: dict[str, list[str]] = {}
        grouped: dict[str, list[str]] = {}
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
                counts = values[values != ""].value_counts()
                rare = sorted(counts.index[counts < min_level_rows])
                if len(rare) >= 2:
                    grouped[column] = rare
                    kept = set(counts.index) - set(rare)
                    categorical[column] = [*sorted(kept), RARE_LEVEL]
                else:
                    categorical[column] = sorted(counts.index)
        names: dict[str, str] = {}
        for column in [*numeric, *categorical]:
            base = clean_name(column)
            name, n = base, 1
            while name in names.values():
                n += 1
                name = f"{base}_{n}"
            names[column] = name
        return cls(numeric, categorical, names, grouped)

    def with_encoding(self, encoded: dict[str, list[float]]) -> TabularPreprocessor:
        """The same preprocessor with these columns target-encoded."""
        return TabularPreprocessor(
            self.numeric, self.categorical, self.names, self.grouped, dict(encoded)
        )

    def only(self, column: str) -> TabularPreprocessor:
        """A preprocessor for one categorical column, read exactly as this one reads it."""
        return TabularPreprocessor(
            [],
            {column: self.categorical[column]},
            {column: column},
            {k: v for k, v in self.grouped.items() if k == column},
            {k: v for k, v in self.encoded.items() if k == column},
        )

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
                if column in self.grouped:
                    values = values.mask(values.isin(self.grouped[column]), RARE_LEVEL)
                # An unseen category becomes missing (explicitly: pandas 4 will refuse it).
                known = values.where(values.isin(categories))
                codes: pd.Categorical[Any] = pd.Categorical(known, dtype=dtype)
            else:
                codes = pd.Categorical([None] * n, dtype=dtype)
            if column in self.encoded:
                raw = codes.codes.astype(np.float64)
                raw[raw < 0] = np.nan
                out[self.names[column]] = self.model_values(column, raw)
            else:
                out[self.names[column]] = codes
        return pd.DataFrame(out, index=frame.index)


@dataclass
class LinearModel:
    """Logistic regression on the preprocessed columns, for tables where a linear model is best.

    Numbers (target encodings included) are median-imputed and standardized; categories are
    one-hot (a missing or unseen one: none of them). An input column's contribution is the sum
    over its design columns of coefficient x (value - training mean), so contributions plus
    `bias` give the margin exactly, as the trees' do.
    """

    c: float = 1.0
    pos_weight: float = 1.0
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # column -> design slice
    centers: dict[str, float] = field(default_factory=dict)  # numbers: median (imputed) ...
    scales: dict[str, float] = field(default_factory=dict)  # ... and standard deviation
    widths: dict[str, int] = field(default_factory=dict)  # categories: one-hot width
    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intercept: float = 0.0
    means: np.ndarray = field(default_factory=lambda: np.zeros(0))  # design columns' means

    def _design(self, features: pd.DataFrame) -> np.ndarray:
        blocks = []
        for name, (lo, hi) in self.spans.items():
            column = features[name]
            if name in self.widths:
                codes = column.cat.codes.to_numpy()
                block = np.zeros((len(features), hi - lo))
                known = codes >= 0
                block[np.flatnonzero(known), codes[known]] = 1.0
            else:
                values = column.to_numpy(dtype=np.float64, na_value=np.nan)
                values = np.where(np.isnan(values), self.centers[name], values)
                block = ((values - self.centers[name]) / self.scales[name]).reshape(-1, 1)
            blocks.append(block)
        return np.hstack(blocks) if blocks else np.zeros((len(features), 0))

    def fit(self, features: pd.DataFrame, y: pd.Series) -> LinearModel:
        from sklearn.linear_model import LogisticRegression

        start = 0
        for name, column in features.items():
            key = str(name)
            if isinstance(column.dtype, pd.CategoricalDtype):
                width = max(len(column.cat.categories), 1)
                self.widths[key] = width
            else:
                values = column.to_numpy(dtype=np.float64, na_value=np.nan)
                center = float(np.nanmedian(values)) if np.isfinite(values).any() else 0.0
                spread = float(np.nanstd(values)) if np.isfinite(values).any() else 0.0
                self.centers[key], self.scales[key] = center, spread if spread > 0 else 1.0
                width = 1
            self.spans[key] = (start, start + width)
            start += width
        design = self._design(features)
        target = np.asarray(y, dtype=int)
        weights = np.where(target == 1, self.pos_weight, 1.0)
        model = LogisticRegression(C=self.c, max_iter=2000)
        model.fit(design, target, sample_weight=weights)
        self.coef = np.asarray(model.coef_[0], dtype=np.float64)
        self.intercept = float(model.intercept_[0])
        self.means = design.mean(axis=0)
        return self

    @property
    def bias(self) -> float:
        return float(self.intercept + self.means @ self.coef)

    def margin(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._design(features) @ self.coef + self.intercept)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.margin(features)))
        return np.column_stack([1.0 - p, p])

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        """(rows, columns): each input column's share of the margin, minus the bias."""
        centered = (self._design(features) - self.means) * self.coef
        return np.column_stack([centered[:, lo:hi].sum(axis=1) for lo, hi in self.spans.values()])

    def importance(self) -> dict[str, float]:
        """Per model column: the sum of its standardized coefficients' magnitudes."""
        return {
            name: float(np.abs(self.coef[lo:hi]).sum()) for name, (lo, hi) in self.spans.items()
        }


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from the model's probability to a calibrated one.

    `sigmoid`: Platt scaling on the log-odds, sigmoid(slope * logit(p) + intercept).
    `isotonic`: piecewise linear through the fitted isotonic steps (flat beyond them).
    Both keep the order of rows, so rankings and reasons are unchanged.
    """

    method: Literal["sigmoid", "isotonic"]
    slope: float = 1.0
    intercept: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def __call__(self, probability: np.ndarray) -> np.ndarray:
        p = np.asarray(probability, dtype=np.float64)
        if self.method == "isotonic":
            return np.asarray(np.interp(p, self.x, self.y))
        q = np.clip(p, 1e-15, 1 - 1e-15)
        z = self.slope * np.log(q / (1.0 - q)) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)))


@dataclass
class ChurnPipeline:
    """Preprocessing + model. `predict_proba` gives P(churn) per row."""

    preprocessor: TabularPreprocessor
    model: Any  # a fitted LGBMClassifier, XGBClassifier or LinearModel
    family: Family
    threshold: float = 0.5
    id_column: str | None = None
    target_column: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    calibrator: Calibrator | None = None  # None: the model's own probability

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
        raw = np.asarray(self.model.predict_proba(self.preprocessor.transform(frame))[:, 1])
        p = self.calibrated(raw)
        return np.column_stack([1.0 - p, p])

    def calibrated(self, probability: np.ndarray) -> np.ndarray:
        """The calibrated churn probability for the model's own (every scoring route uses it)."""
        p = np.asarray(probability, dtype=np.float64)
        return p if self.calibrator is None else self.calibrator(p)

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
        if self.family == "linear":
            values = self.model.contributions(features)
            return pd.DataFrame(values, columns=self.input_columns, index=frame.index)
        if self.family == "lightgbm":
            raw = self.model.booster_.predict(features, pred_contrib=True)
        else:
            import xgboost as xgb

            matrix = xgb.DMatrix(features, enable_categorical=True)
            raw = self.model.get_booster().predict(matrix, pred_contribs=True)
        values = np.asarray(raw)[:, :-1]
        return pd.DataFrame(values, columns=self.input_columns, index=frame.index)
