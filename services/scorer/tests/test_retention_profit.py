"""The retention list decides by expected profit: order, the cut, totals, and the edge cases
(capacity 0, a value column with blanks or negatives, no positive probability mass)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from churnops_common.ml.economics import Economics, decide
from churnops_scorer.retention import RetentionList
from churnops_scorer.scoring import PROBABILITY, REASON_VALUES, REASONS, RISK_BAND

ID = "customer_id"


def _predictions(p: np.ndarray, offset: int = 0) -> pa.Table:
    n = len(p)
    columns = {
        ID: pa.array([f"c{offset + i}" for i in range(n)]),
        PROBABILITY: pa.array(p, pa.float64()),
        RISK_BAND: pa.array(["low"] * n),
        **{r: pa.array(["tenure"] * n) for r in REASONS},
        **{r: pa.array([0.5] * n, pa.float64()) for r in REASON_VALUES},
    }
    return pa.table(columns)


def _chunk(value: list[object] | None) -> pa.Table:
    if value is None:
        return pa.table({"other": pa.array([0] * 1)})
    return pa.table({"monthly_charges": pa.array(value)})


def _list(
    p: np.ndarray, value: list[object] | None, economics: Economics, top_k: int = 5, chunk: int = 3
) -> RetentionList:
    retention = RetentionList(ID, economics, top_k)
    for start in range(0, len(p), chunk):
        part = _chunk(None if value is None else value[start : start + chunk])
        retention.add(part, _predictions(p[start : start + chunk], start))
    return retention


VALUED = Economics(value_column="monthly_charges", value_multiplier=10.0)


def test_ordered_by_expected_profit_with_the_cut_and_whole_batch_totals() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(40)
    value = list(rng.uniform(10, 100, 40))
    retention = _list(p, value, VALUED, top_k=6, chunk=7)
    clv = np.asarray(value) * 10.0
    profit = p * (0.3 * (clv - 10) - 1) - (1 - p) * 11
    table = retention.table()
    assert table[ID].tolist() == [f"c{i}" for i in np.argsort(-profit, kind="stable")[:6]]
    assert table["contact"].tolist() == (np.sort(profit)[::-1][:6] > 0).tolist()
    totals = retention.totals()  # no capacity: every profitable customer of the batch
    assert totals.contacted == int((profit > 0).sum()) > 6
    assert totals.expected_profit == pytest.approx(profit[profit > 0].sum())
    retained = p * 0.3 * clv
    assert totals.expected_retained == pytest.approx(retained[profit > 0].sum())
    cost = 1 + 10 * (p * 0.3 + (1 - p))
    assert totals.expected_cost == pytest.approx(cost[profit > 0].sum())
    assert totals.expected_profit == pytest.approx(totals.expected_retained - totals.expected_cost)
    assert decide(p, clv, VALUED).sum() == totals.contacted


def test_chunking_changes_nothing() -> None:
    rng = np.random.default_rng(4)
    p, value = rng.random(50), list(rng.uniform(0, 100, 50))
    one = _list(p, value, VALUED, chunk=50)
    many = _list(p, value, VALUED, chunk=4)
    assert one.table().equals(many.table())
    assert vars(one.totals()) == pytest.approx(vars(many.totals()))


def test_capacity_zero_contacts_nobody_but_still_ranks() -> None:
    p = np.linspace(0.1, 0.9, 9)
    retention = _list(p, None, Economics(capacity=0))
    table = retention.table()
    assert len(table) == 5 and not table["contact"].any()
    assert table["expected_profit"].is_monotonic_decreasing
    assert retention.totals().contacted == 0
    assert retention.summary()["expected_profit"] == 0


def test_capacity_keeps_every_contacted_customer_in_the_list() -> None:
    p = np.full(30, 0.8)
    retention = _list(p, None, Economics(capacity=12), top_k=5)
    table = retention.table()
    assert len(table) == 12 and table["contact"].all()
    assert retention.totals().contacted == 12
    assert table[ID].tolist() == [f"c{i}" for i in range(12)]  # ties keep file order


def test_budget_ends_the_campaign_at_the_first_customer_it_cannot_pay() -> None:
    p = np.full(10, 0.9)
    economics = Economics(budget=10.0)  # each contact costs 1 + 10 * (0.9 * 0.3 + 0.1) = 4.7
    retention = _list(p, None, economics)
    assert retention.totals().contacted == 2
    assert retention.totals().expected_cost == pytest.approx(9.4)


def test_blank_and_text_values_take_the_constant_clv_and_negatives_are_never_contacted() -> None:
    p = np.array([0.9, 0.9, 0.9, 0.9])
    economics = Economics(value_column="monthly_charges", value_multiplier=1.0, clv=200.0)
    retention = RetentionList(ID, economics, 10)
    retention.add(
        pa.table({"monthly_charges": pa.array([None, None, -50.0, 30.0])}), _predictions(p)
    )
    text = RetentionList(ID, economics, 10)
    text.add(pa.table({"monthly_charges": pa.array(["", "n/a", "-50", "30"])}), _predictions(p))
    for each in (retention, text):
        table = each.table().set_index(ID)
        assert table.loc["c0", "value"] == table.loc["c1", "value"] == 200.0
        assert table.loc["c2", "value"] == -50.0
        assert not table.loc["c2", "contact"]
        assert table.loc["c2", "expected_profit"] < 0
        assert table.loc["c0", "contact"] and table.loc["c3", "contact"]
        assert each.totals().contacted == 3


def test_no_positive_probability_mass_contacts_nobody() -> None:
    p = np.zeros(8)
    retention = _list(p, None, Economics())
    table = retention.table()
    assert not table["contact"].any()
    assert table["expected_profit"].tolist() == pytest.approx([-11.0] * 5)
    assert retention.totals().contacted == 0 and retention.totals().expected_cost == 0


def test_a_split_batch_merges_rows_and_totals(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    p, value = rng.random(60), list(rng.uniform(0, 100, 60))
    whole = _list(p, value, VALUED, chunk=60)
    merged = RetentionList(ID, VALUED, 5)
    for start in (0, 25):
        stop = 25 if start == 0 else 60
        part = RetentionList(ID, VALUED, 5)
        part.add(_chunk(value[start:stop]), _predictions(p[start:stop], start))
        path = tmp_path / f"part-{start}.parquet"
        part.save_part(path)
        merged.merge_part(io.BytesIO(path.read_bytes()))
    assert merged.table().equals(whole.table())
    assert vars(merged.totals()) == pytest.approx(vars(whole.totals()))
