"""The figures the scenarios measure, printed as one table at the end of the session."""

from __future__ import annotations

import math

# Insertion order is the table's order; conftest.py prints it in the terminal summary.
FIGURES: dict[str, str] = {}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (no interpolation: with 20 samples p95 is the 19th value)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]
