"""The reasons' top-k: each row's largest contributions, in a stable order."""

from __future__ import annotations

import numpy as np

from churnops_scorer.reasons import top_k, top_reasons


def test_top_k_breaks_ties_by_column_order() -> None:
    values = np.array([[1.0, 3.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0], [-1.0, -2.0, 5.0, -1.0]])
    index, top = top_k(values, 3)
    assert index.tolist() == [[1, 2, 3], [0, 1, 2], [2, 0, 3]]
    assert top.tolist() == [[3.0, 3.0, 2.0], [0.0, 0.0, 0.0], [5.0, -1.0, -1.0]]


def test_fewer_columns_than_reasons_leave_the_rest_empty() -> None:
    index, values = top_reasons(np.array([[0.5, 0.2]]), k=3)
    assert index.tolist() == [[0, 1, -1]]
    assert values[0, :2].tolist() == [0.5, 0.2] and np.isnan(values[0, 2])


def test_a_risk_lowering_contribution_is_never_a_reason() -> None:
    index, values = top_reasons(np.array([[0.5, -1.0, 0.01]]), k=3, floor=0.05)
    assert index.tolist() == [[0, -1, -1]]
    assert values[0, 0] == 0.5 and np.isnan(values[0, 1:]).all()
