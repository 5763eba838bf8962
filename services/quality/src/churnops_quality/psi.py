"""Population Stability Index of a batch against a stored profile, in one chunked pass.

The formula and the verdict are the platform's (`churnops_common.drift`): proportions below
1e-4 (zero included) are raised to 1e-4, then PSI = sum over bins of (cur - ref) * ln(cur / ref).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from churnops_common.drift import FLOOR, DriftVerdict, psi_value
from churnops_quality.profile import FeatureBins, Profile
from churnops_quality.schema import Factorized

__all__ = ["FLOOR", "FeaturePsi", "PsiAccumulator", "PsiResult", "compute_psi", "psi_value"]


class FeaturePsi(BaseModel):
    """One feature's PSI with the proportions behind it (for the report's plots)."""

    model_config = ConfigDict(frozen=True)

    name: str
    psi: float
    labels: list[str]
    ref_proportions: list[float]
    cur_proportions: list[float]


class PsiResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    features: list[FeaturePsi]
    rows: int

    @property
    def by_feature(self) -> dict[str, float]:
        return {f.name: f.psi for f in self.features}

    @property
    def max_psi(self) -> float | None:
        return max((f.psi for f in self.features), default=None)

    def breached(self, threshold: float) -> dict[str, float]:
        return self.verdict(threshold).drifted

    def verdict(self, threshold: float) -> DriftVerdict:
        return DriftVerdict(self.by_feature, threshold)


class PsiAccumulator:
    """Counts a batch into the profile's bins chunk by chunk; memory is one chunk at a time."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.counts: dict[str, np.ndarray] = {
            f.name: np.zeros(f.n_bins, dtype="int64") for f in profile.features
        }
        self.rows = 0
        self.seen: set[str] = set()

    def update(
        self, chunk: pd.DataFrame, factorized: Mapping[str, Factorized] | None = None
    ) -> None:
        """Count one chunk; `factorized`: columns of this chunk already factorized (by the
        validator), so their distinct values are not hashed a second time."""
        self.rows += len(chunk)
        known = factorized or {}
        for bins in self.profile.features:
            if bins.name in chunk.columns:
                self.seen.add(bins.name)
                self.counts[bins.name] += bins.count(chunk[bins.name], known.get(bins.name))

    def result(self) -> PsiResult:
        """PSI of every profiled feature that the batch had (absent columns are left out)."""
        features = [self._feature(bins) for bins in self.profile.features if bins.name in self.seen]
        return PsiResult(features=features, rows=self.rows)

    def _feature(self, bins: FeatureBins) -> FeaturePsi:
        ref = bins.ref_proportions()
        cur = self.counts[bins.name] / max(self.rows, 1)
        return FeaturePsi(
            name=bins.name,
            psi=psi_value(ref, cur),
            labels=bins.labels,
            ref_proportions=ref.tolist(),
            cur_proportions=cur.tolist(),
        )


def compute_psi(profile: Profile, chunks: Iterable[pd.DataFrame]) -> PsiResult:
    accumulator = PsiAccumulator(profile)
    for chunk in chunks:
        accumulator.update(chunk)
    return accumulator.result()
