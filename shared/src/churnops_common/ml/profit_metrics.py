"""Profit measures of a churn model on labelled outcomes, from `empulse` (not written here).

EMPC (expected maximum profit, acceptance ~ Beta(alpha, beta)), MPC (maximum profit at the
mean acceptance rate), and the profit-optimal threshold and contact rate, as defined by
Verbraken, Verbeke and Baesens (IEEE TKDE 2013). All are per customer of the population, with
the campaign's constant CLV (the measures take one value for everybody). Needs the `profit`
extra of churnops-common (the trainer and the monitor install it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from churnops_common.ml.economics import Economics


class ProfitMetrics(BaseModel):
    """None where undefined: one class only, or no rows."""

    model_config = ConfigDict(frozen=True)

    empc: float | None
    mp: float | None
    optimal_threshold: float | None
    contact_rate: float | None


def _parameters(economics: Economics) -> dict[str, Any]:
    return {
        "clv": economics.clv,
        "incentive_cost": economics.incentive_cost,
        "contact_cost": economics.contact_cost,
    }


def profit_metrics(y: np.ndarray, p: np.ndarray, economics: Economics) -> ProfitMetrics:
    from empulse.metrics import empc_score, mpc_score

    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) == 0 or y.min() == y.max():
        return ProfitMetrics(empc=None, mp=None, optimal_threshold=None, contact_rate=None)
    stochastic = {
        **_parameters(economics),
        "alpha": economics.accept_alpha,
        "beta": economics.accept_beta,
    }
    fixed = {**_parameters(economics), "accept_rate": economics.accept_rate}
    return ProfitMetrics(
        empc=_finite(empc_score(y, p, **stochastic)),
        mp=_finite(mpc_score(y, p, **fixed)),
        optimal_threshold=_finite(empc_score.optimal_threshold(y, p, **stochastic)),
        contact_rate=_finite(empc_score.optimal_rate(y, p, **stochastic)),
    )


def _finite(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None
