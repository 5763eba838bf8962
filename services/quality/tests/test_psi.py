"""PSI exactly as specified: hand-computed cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnops_quality.profile import FeatureBins, build_profile
from churnops_quality.psi import compute_psi, psi_value
from churnops_quality.schema import infer_schema


def _psi(reference: pd.DataFrame, current: pd.DataFrame, chunk: int | None = None) -> dict:
    schema = infer_schema(reference)
    profile = build_profile(reference, schema)
    chunks = (
        [current]
        if chunk is None
        else [current.iloc[i : i + chunk] for i in range(0, len(current), chunk)]
    )
    return compute_psi(profile, chunks).by_feature


def test_formula_on_two_bins() -> None:
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi_value(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(expected)
    assert expected == pytest.approx(0.274653, abs=1e-6)


def test_zero_proportions_are_raised_to_the_floor() -> None:
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    got = psi_value(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.4, 0.1]))
    assert got == pytest.approx(expected)
    # Both zero: both floored, the bin adds nothing.
    assert psi_value(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0


def test_quantile_edges_ties_removed_and_edge_values_go_up() -> None:
    values = [0.0] * 50 + [float(v) for v in range(1, 51)]
    frame = pd.DataFrame({"x": values})
    bins = build_profile(frame, infer_schema(frame)).features[0]
    assert bins.kind == "quantile"
    # Quantiles 0.1..0.5 are 0 (one edge once duplicates go), then linear interpolation.
    assert bins.edges == pytest.approx([0.0, 0.5, 10.4, 20.3, 30.2, 40.1])
    # The 50 zeros equal the first edge, so they sit in the bin above it, not below.
    assert bins.ref_counts == [0, 50, 10, 10, 10, 10, 10, 0]


def test_edge_rule_and_missing_bin() -> None:
    bins = FeatureBins(
        name="x", kind="quantile", edges=[1.0, 2.0], ref_counts=[1, 1, 1, 1], ref_total=4
    )
    series = pd.Series([0.5, 1.0, 1.5, 2.0, 3.0, None])
    assert bins.bin_index(series).tolist() == [0, 1, 1, 2, 2, 3]


def test_categorical_unseen_and_missing_by_hand() -> None:
    reference = pd.DataFrame({"c": ["a", "a", "b", "b"]})
    current = pd.DataFrame({"c": ["a", "c", None, "b"]})
    # bins a, b, unseen, missing: ref .5 .5 0 0 (floored), cur .25 each
    expected = 2 * (0.25 - 0.5) * math.log(0.25 / 0.5) + 2 * (0.25 - 1e-4) * math.log(0.25 / 1e-4)
    assert _psi(reference, current)["c"] == pytest.approx(expected)


def test_discrete_numeric_by_hand() -> None:
    reference = pd.DataFrame({"n": [1, 1, 2, 2, 3, 3, 3, 3]})
    current = pd.DataFrame({"n": [1, 2, 2, 4]})
    # bins 1, 2, 3, unseen, missing: ref .25 .25 .5 0 0; cur .25 .5 0 .25 0
    expected = (
        (0.5 - 0.25) * math.log(0.5 / 0.25)
        + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
        + (0.25 - 1e-4) * math.log(0.25 / 1e-4)
    )
    assert _psi(reference, current)["n"] == pytest.approx(expected)


def test_ten_equal_bins_by_hand() -> None:
    reference = pd.DataFrame({"x": np.arange(1, 21, dtype=float)})  # 20 distinct: quantiles
    current = pd.DataFrame({"x": [1.0] * 10 + [20.0] * 10})  # half lowest bin, half highest
    bins = build_profile(reference, infer_schema(reference)).features[0]
    assert bins.ref_counts == [2] * 10 + [0]
    expected = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert _psi(reference, current)["x"] == pytest.approx(expected)


def test_id_and_target_are_left_out() -> None:
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "churned": [0, 1, 0], "x": [1, 2, 3]})
    assert set(_psi(frame, frame)) == {"x"}


numbers = st.lists(st.one_of(st.floats(-1e6, 1e6), st.none()), min_size=1, max_size=60)
letters = st.lists(st.one_of(st.sampled_from("abcdef"), st.none()), min_size=1, max_size=60)


def _frame(nums: list[float | None], cats: list[str | None]) -> pd.DataFrame:
    size = min(len(nums), len(cats))
    return pd.DataFrame(
        {
            "num": pd.Series(nums[:size], dtype="float64"),
            "cat": pd.Series(cats[:size], dtype="object"),
        }
    )


@settings(max_examples=60, deadline=None)
@given(numbers, letters, numbers, letters)
def test_psi_is_never_negative(rn: list, rc: list, cn: list, cc: list) -> None:
    for value in _psi(_frame(rn, rc), _frame(cn, cc)).values():
        assert value >= 0


@settings(max_examples=60, deadline=None)
@given(numbers, letters)
def test_psi_of_a_sample_against_itself_is_zero(nums: list, cats: list) -> None:
    frame = _frame(nums, cats)
    for value in _psi(frame, frame).values():
        assert value == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(numbers, letters, numbers, letters, st.randoms(use_true_random=False), st.integers(1, 7))
def test_psi_ignores_row_order_and_chunking(
    rn: list, rc: list, cn: list, cc: list, rnd: object, chunk: int
) -> None:
    reference, current = _frame(rn, rc), _frame(cn, cc)
    order = list(range(len(current)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    shuffled = current.iloc[order].reset_index(drop=True)
    whole = _psi(reference, current)
    again = _psi(reference, shuffled, chunk=chunk)
    assert again.keys() == whole.keys()
    for name, value in whole.items():
        assert again[name] == pytest.approx(value, rel=1e-9, abs=1e-12)
