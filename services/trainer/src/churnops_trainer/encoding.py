"""Out-of-fold target encoding of high-cardinality categorical columns.

sklearn's `TargetEncoder` cross-fits: each training row gets the smoothed churn rate of its
level computed without its own fold, so the model cannot read a row's label through its
encoding; the levels' encodings on all rows are what scoring uses. The encoded column replaces
the category in place, so reasons still name the input column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import TargetEncoder

from churnops_common.ml.pipeline import TabularPreprocessor


def target_encode(
    features: pd.DataFrame,
    y: pd.Series,
    columns: list[str],
    preprocessor: TabularPreprocessor,
    folds: int,
    seed: int,
) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    """(features with `columns` replaced by out-of-fold encodings, per column the encoding
    table: one number per category code, then the one for a missing or unseen value)."""
    names = [preprocessor.names[c] for c in columns]
    codes = np.column_stack([features[name].cat.codes.to_numpy(np.int64) for name in names])
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    encoder = TargetEncoder(target_type="binary", cv=splitter)
    out_of_fold = encoder.fit_transform(codes, y.to_numpy())
    encoded = features.copy()
    tables: dict[str, list[float]] = {}
    prior = float(encoder.target_mean_)
    for j, (column, name) in enumerate(zip(columns, names, strict=True)):
        encoded[name] = out_of_fold[:, j]
        learned = dict(zip(encoder.categories_[j].tolist(), encoder.encodings_[j], strict=True))
        levels = range(len(preprocessor.categorical[column]))
        tables[column] = [float(learned.get(code, prior)) for code in levels]
        tables[column].append(float(learned.get(-1, prior)))  # missing (code -1) or unseen
    return encoded, tables
