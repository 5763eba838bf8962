"""The figures the scenarios measure, printed as one table at the end of the session."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

# Insertion order is the table's order; conftest.py prints it in the terminal summary.
FIGURES: dict[str, str] = {}
# The same figures as numbers (latency_p50_s, events_lost ...): one JSON object written to the
# file named by CHURNOPS_FIGURES at the end of the session, for a benchmark to compare runs.
NUMBERS: dict[str, float | int] = {}


def write_numbers() -> Path | None:
    """Write NUMBERS to $CHURNOPS_FIGURES when it is set; returns the path written."""
    target = os.environ.get("CHURNOPS_FIGURES")
    if not target or not NUMBERS:
        return None
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(NUMBERS, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (no interpolation: with 20 samples p95 is the 19th value)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]
