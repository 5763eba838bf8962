from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnops_monitor.segments import (
    MISSING,
    default_segment_columns,
    segment_labels,
    segment_metrics,
)


def _region(name: str, rows: int, good: bool) -> pd.DataFrame:
    """Every third customer churns; a good segment ranks them all on top, a bad one inverts."""
    churned = (np.arange(rows) % 3 == 0).astype(int)
    if good:
        score = np.where(churned == 1, 0.9, 0.1)
    else:  # churners scored low (missed), half the stayers scored high (false alarms)
        score = np.where(churned == 1, 0.3, np.where(np.arange(rows) % 2 == 0, 0.7, 0.1))
    return pd.DataFrame({"region": name, "churned": churned, "churn_probability": score})


@pytest.fixture
def crafted() -> pd.DataFrame:
    frame = pd.concat(
        [
            _region("north", 150, True),
            _region("east", 150, True),
            _region("south", 90, False),
            _region("tiny", 12, False),
        ],
        ignore_index=True,
    )
    frame["tenure_months"] = np.arange(len(frame)) * 7 % 101  # wide numeric: quartile buckets
    frame["plan"] = "standard"  # constant: never a segment column
    frame["customer_id"] = [f"C{i}" for i in range(len(frame))]
    return frame


def test_segment_rows_and_worst_flags(crafted: pd.DataFrame) -> None:
    columns = default_segment_columns(
        crafted, exclude={"customer_id", "churned", "churn_probability"}
    )
    assert columns == ["region", "tenure_months"]
    rows = segment_metrics(
        crafted, target="churned", score="churn_probability", threshold=0.5, columns=columns
    )
    region = {r.segment_value: r for r in rows if r.segment_column == "region"}
    assert set(region) == {"north", "east", "south", "tiny"}
    assert region["north"].rows == 150
    assert region["north"].positive_rate == pytest.approx(50 / 150)
    assert region["north"].roc_auc == 1.0
    assert region["north"].false_negative_rate == 0.0
    assert region["north"].false_positive_rate == 0.0
    assert region["north"].mean_score == pytest.approx((50 * 0.9 + 100 * 0.1) / 150)
    south = region["south"]
    assert south.false_negative_rate == 1.0  # every churner scored 0.3 < 0.5
    assert south.false_positive_rate == pytest.approx(0.5)
    sub = crafted[crafted["region"] == "south"]
    assert south.roc_auc == pytest.approx(roc_auc_score(sub["churned"], sub["churn_probability"]))
    # The bad, big segment is flagged; the equally bad but tiny one is too small to judge.
    assert {v for v, r in region.items() if r.flagged} == {"south"}
    tenure = [r for r in rows if r.segment_column == "tenure_months"]
    assert len(tenure) == 4
    assert sum(r.rows for r in tenure) == len(crafted)


def test_single_class_segment_has_no_auc() -> None:
    frame = pd.DataFrame(
        {"g": ["a"] * 40 + ["b"] * 40, "y": [0] * 40 + [0, 1] * 20, "s": np.linspace(0, 1, 80)}
    )
    rows = segment_metrics(frame, target="y", score="s", threshold=0.5, columns=["g"])
    a = next(r for r in rows if r.segment_value == "a")
    assert a.roc_auc is None
    assert a.false_negative_rate is None  # no churners in it
    assert a.positive_rate == 0.0


def test_key_numeric_columns_follow_the_reasons() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.normal(size=60) for name in "abcdef"})
    frame["reason_1"] = ["f"] * 40 + ["e"] * 20
    frame["reason_2"] = "e"
    columns = default_segment_columns(frame, exclude={"reason_1", "reason_2"})
    assert columns[:2] == ["e", "f"]
    assert len(columns) == 4  # only the key numeric columns get buckets


def test_missing_values_get_their_own_segment() -> None:
    labels = segment_labels(pd.Series(["x", None, "y", "x"]))
    assert list(labels) == ["x", MISSING, "y", "x"]
    wide = pd.Series([*range(40), None], dtype="float64")
    buckets = segment_labels(wide)
    assert buckets.iloc[-1] == MISSING
    assert buckets.iloc[:-1].nunique() == 4
