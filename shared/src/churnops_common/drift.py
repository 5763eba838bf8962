"""The platform's one drift verdict: PSI against `PSI_THRESHOLD`, said the same way everywhere.

A feature has drifted when its PSI is at least the threshold; a batch has drifted when any of its
features has. The quality report, the monitoring report, Evidently's pages and the alerts all
take their verdict and their wording from here, so no two of them can disagree.

PSI = sum over bins of (cur - ref) * ln(cur / ref), proportions below 1e-4 (zero included)
raised to 1e-4. Scores (churn probabilities) are binned like a numeric feature of the baseline:
edges at the reference's deciles, outer bins open-ended, a value equal to an edge in the bin
above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

FLOOR = 1e-4
DECILES = np.linspace(0.1, 0.9, 9)


def psi_value(ref_proportions: np.ndarray, cur_proportions: np.ndarray) -> float:
    ref = np.maximum(np.asarray(ref_proportions, dtype="float64"), FLOOR)
    cur = np.maximum(np.asarray(cur_proportions, dtype="float64"), FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def score_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of current scores against reference scores, on the reference's decile bins."""
    ref = np.asarray(reference, dtype="float64")
    cur = np.asarray(current, dtype="float64")
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if not len(ref) or not len(cur):
        raise ValueError("PSI needs scores on both sides")
    edges = np.unique(np.quantile(ref, DECILES))
    bins = len(edges) + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=bins)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=bins)
    return psi_value(ref_counts / len(ref), cur_counts / len(cur))


@dataclass(frozen=True)
class DriftVerdict:
    """A batch's drift: which features reached the threshold, out of how many compared."""

    psi: Mapping[str, float]
    threshold: float
    drifted: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        worst_first = sorted(self.psi.items(), key=lambda kv: (-kv[1], kv[0]))
        object.__setattr__(
            self, "drifted", {name: value for name, value in worst_first if value >= self.threshold}
        )

    @property
    def features(self) -> int:
        return len(self.psi)

    @property
    def has_drift(self) -> bool:
        return bool(self.drifted)

    @property
    def max_psi(self) -> float | None:
        return max(self.psi.values(), default=None)

    def words(self) -> str:
        """'drift in 8 of 14 features' or 'no drift'."""
        if not self.has_drift:
            return "no drift"
        return f"drift in {len(self.drifted)} of {self.features} features"


def headline(
    status: str, verdict: DriftVerdict | None, action: str | None = None, reason: str = ""
) -> str:
    """One sentence for a checked batch, e.g. 'accepted, drift in 8 of 14 features: retrain
    requested', 'accepted, no drift', 'rejected: <reason>'."""
    if status != "accepted":
        return f"rejected: {reason}" if reason else "rejected"
    text = "accepted" if verdict is None else f"accepted, {verdict.words()}"
    return f"{text}: {action}" if action else text


def is_drifted(value: float | None, threshold: float) -> bool:
    return value is not None and value >= threshold
