"""The baseline profile: fixed bins per feature and the reference's count in each bin.

Binning, exactly (so anyone can reproduce our PSI):
- numeric with more than 10 distinct reference values: edges are the reference quantiles at
  0.1, ..., 0.9 (numpy `quantile`, linear), duplicates removed; outer bins open-ended; a value
  equal to an edge goes to the bin above it; missing values have their own bin;
- numeric with at most 10 distinct values, and categorical: one bin per reference value, one for
  values unseen in the reference, one for missing.
A batch is binned against these fixed bins, so its PSI never needs the reference rows again.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from churnops_quality.schema import (
    ColumnSpec,
    Factorized,
    Schema,
    category_codes,
    category_strings,
    coerce_numeric,
    factorize,
)

QUANTILES = np.linspace(0.1, 0.9, 9)
MAX_DISCRETE = 10

BinKind = Literal["quantile", "discrete", "categorical"]


class FeatureBins(BaseModel):
    """One feature's fixed bins and the reference counts in them (missing bin last)."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: BinKind
    edges: list[float] = []  # quantile: len(edges) + 1 value bins
    numbers: list[float] = []  # discrete: one bin each, then unseen
    categories: list[str] = []  # categorical: one bin each, then unseen
    ref_counts: list[int]
    ref_total: int

    @property
    def n_bins(self) -> int:
        return len(self.ref_counts)

    @property
    def labels(self) -> list[str]:
        """Human names of the bins, for reports."""
        if self.kind == "quantile":
            bounds = ["-inf", *(f"{e:.4g}" for e in self.edges), "+inf"]
            values = [f"[{lo}, {hi})" for lo, hi in pairwise(bounds)]
        elif self.kind == "discrete":
            values = [f"{n:g}" for n in self.numbers] + ["(unseen)"]
        else:
            values = [*self.categories, "(unseen)"]
        return [*values, "(missing)"]

    def ref_proportions(self) -> np.ndarray:
        return np.asarray(self.ref_counts, dtype="float64") / max(self.ref_total, 1)

    def bin_index(self, series: pd.Series, factorized: Factorized | None = None) -> np.ndarray:
        """The bin of every value, vectorized (`factorized`: `factorize(series)`, if known)."""
        missing_bin = self.n_bins - 1
        if self.kind == "categorical":
            codes, missing = category_codes(series, self.categories, factorized)
            codes = np.where(codes < 0, len(self.categories), codes)
            return np.where(missing, missing_bin, codes)
        values = coerce_numeric(series)[0].to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(values)
        # A few edges or numbers, many values: one comparison per edge is several times
        # faster than a bisection per value (whose branches a CPU cannot predict).
        if self.kind == "quantile":
            # How many edges are <= the value (np.searchsorted side="right"): a value equal
            # to an edge lands in the bin above it.
            codes = np.zeros(len(values), dtype="intp")
            for edge in self.edges:
                codes += values >= edge
        else:
            codes = np.full(len(values), len(self.numbers), dtype="intp")
            for index in reversed(range(len(self.numbers))):  # the first equal number wins
                codes[values == self.numbers[index]] = index
        return np.where(missing, missing_bin, codes)

    def count(self, series: pd.Series, factorized: Factorized | None = None) -> np.ndarray:
        return np.bincount(self.bin_index(series, factorized), minlength=self.n_bins)


class Profile(BaseModel):
    """Every feature's bins: what a batch's PSI is computed against."""

    model_config = ConfigDict(frozen=True)

    features: list[FeatureBins]
    rows: int

    def feature(self, name: str) -> FeatureBins | None:
        return next((f for f in self.features if f.name == name), None)


def bins_for(series: pd.Series, spec: ColumnSpec) -> FeatureBins:
    """Fixed bins for one reference column (the rule in this module's docstring)."""
    total = len(series)
    # A constant number keeps numeric bins (one value); a constant text, categorical ones.
    if spec.role == "numeric" or (spec.role == "constant" and spec.minimum is not None):
        values = coerce_numeric(series)[0].to_numpy(dtype="float64", na_value=np.nan)
        present = values[~np.isnan(values)]
        distinct = np.unique(present)
        if distinct.size > MAX_DISCRETE:
            edges = np.unique(np.quantile(present, QUANTILES))
            draft = FeatureBins(
                name=spec.name,
                kind="quantile",
                edges=edges.tolist(),
                ref_counts=[0] * (edges.size + 2),
                ref_total=total,
            )
        else:
            draft = FeatureBins(
                name=spec.name,
                kind="discrete",
                numbers=distinct.tolist(),
                ref_counts=[0] * (distinct.size + 2),
                ref_total=total,
            )
    else:
        categories = sorted({str(v) for v in category_strings(factorize(series)[1]).dropna()})
        draft = FeatureBins(
            name=spec.name,
            kind="categorical",
            categories=categories,
            ref_counts=[0] * (len(categories) + 2),
            ref_total=total,
        )
    counts = draft.count(series)
    return draft.model_copy(update={"ref_counts": [int(c) for c in counts]})


def build_profile(frame: pd.DataFrame, schema: Schema) -> Profile:
    """Bins and reference counts for every feature of the schema present in the frame."""
    features = [
        bins_for(frame[spec.name], spec) for spec in schema.features if spec.name in frame.columns
    ]
    return Profile(features=features, rows=len(frame))


def feature_names(profile: Profile) -> Iterable[str]:
    return (f.name for f in profile.features)
