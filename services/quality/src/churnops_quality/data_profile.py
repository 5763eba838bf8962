"""What an accepted file holds, for its report: rows, target rate, missingness, distributions.

Built from what the check already counted (no second read): the baseline's bins for a first
training set (it is the reference), the batch's counts in those bins otherwise. Every bin list
ends with the missing bin (see `profile.py`), so its share is the column's missingness.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from churnops_quality.profile import Profile
from churnops_quality.psi import PsiResult


class FeatureShape(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    labels: list[str]
    proportions: list[float]

    @property
    def missing(self) -> float:
        return self.proportions[-1] if self.proportions else 0.0


class DataProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    rows: int
    target_rate: float | None
    features: list[FeatureShape]


def from_baseline(profile: Profile, target_rate: float | None) -> DataProfile:
    features = [
        FeatureShape(name=f.name, labels=f.labels, proportions=f.ref_proportions().tolist())
        for f in profile.features
    ]
    return DataProfile(rows=profile.rows, target_rate=target_rate, features=features)


def from_psi(psi: PsiResult, target_rate: float | None) -> DataProfile:
    features = [
        FeatureShape(name=f.name, labels=f.labels, proportions=f.cur_proportions)
        for f in psi.features
    ]
    return DataProfile(rows=psi.rows, target_rate=target_rate, features=features)
