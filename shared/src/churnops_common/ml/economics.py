"""Campaign economics: what contacting a customer is expected to earn, and whom to contact.

The churn profit model of Verbraken, Verbeke and Baesens (IEEE TKDE 2013), per customer:
a contacted churner accepts the incentive with probability gamma ~ Beta(alpha, beta) and is
retained (worth CLV, minus the incentive d and the contact cost f), or declines (we paid f);
a contacted non-churner takes the incentive (d + f, nothing gained). With a calibrated churn
probability p, and gamma at its mean (profit is linear in gamma):

    expected profit of contacting = p * (mean_gamma * (CLV - d) - f) - (1 - p) * (d + f)

The same model, summed over a labelled population and maximised over the contact cut, is the
maximum profit measure (MPC); its expectation over gamma is EMPC (see `profit_metrics`).

The profit cut is the one decision of the platform: contact the customers with positive expected
profit, best first, as long as the capacity (most contacts per batch) and the budget (expected
spend per batch) allow. The retention list, monitoring's precision and recall and the realized
profit per labelled batch all use it. Risk bands are only a reading of the probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from churnops_common.settings import Settings

TOP_SHARE = 0.1  # the plain "top 10% by probability" policy
PLAIN_THRESHOLD = 0.5  # the plain "probability >= 0.5" policy


@dataclass(frozen=True)
class Economics:
    """One retention campaign's figures (defaults: Verbraken et al. 2013)."""

    clv: float = 200.0  # value of a retained customer when the batch has no value column
    incentive_cost: float = 10.0
    contact_cost: float = 1.0
    accept_alpha: float = 6.0  # share of contacted churners who accept ~ Beta(alpha, beta)
    accept_beta: float = 14.0
    value_column: str | None = None  # per-customer value column of the batch, if any
    value_multiplier: float = 1.0  # CLV = value column x this (e.g. months of a monthly charge)
    capacity: int | None = None  # most customers contacted per batch (None: no limit)
    budget: float | None = None  # most expected spend per batch (None: no limit)

    @classmethod
    def from_settings(cls, settings: Settings) -> Economics:
        return cls(
            clv=settings.retention_clv,
            incentive_cost=settings.retention_incentive_cost,
            contact_cost=settings.retention_contact_cost,
            accept_alpha=settings.retention_accept_alpha,
            accept_beta=settings.retention_accept_beta,
            value_column=settings.retention_value_column,
            value_multiplier=settings.retention_value_multiplier,
            capacity=settings.retention_capacity,
            budget=settings.retention_budget,
        )

    @property
    def accept_rate(self) -> float:
        """Mean share of contacted churners who accept the offer."""
        return self.accept_alpha / (self.accept_alpha + self.accept_beta)

    def values(self, raw: np.ndarray | None, rows: int) -> np.ndarray:
        """CLV per customer: the value column times the multiplier; a blank (or text) value
        gets the constant CLV. A negative value stays negative: such a customer is worth less
        than nothing to keep, so contacting them never pays and the cut leaves them out."""
        if raw is None:
            return np.full(rows, self.clv, dtype=np.float64)
        value = np.asarray(raw, dtype=np.float64) * self.value_multiplier
        return np.asarray(np.where(np.isfinite(value), value, self.clv), dtype=np.float64)

    def expected_profit(self, probability: np.ndarray, clv: np.ndarray) -> np.ndarray:
        d, f = self.incentive_cost, self.contact_cost
        p = np.asarray(probability, dtype=np.float64)
        return p * (self.accept_rate * (clv - d) - f) - (1.0 - p) * (d + f)

    def expected_cost(self, probability: np.ndarray) -> np.ndarray:
        """The contact, plus the incentive for those expected to take it (every non-churner
        contacted takes it, and the accepting share of churners)."""
        p = np.asarray(probability, dtype=np.float64)
        return self.contact_cost + self.incentive_cost * (p * self.accept_rate + (1.0 - p))

    def expected_retained(self, probability: np.ndarray, clv: np.ndarray) -> np.ndarray:
        """Value expected to be kept by contacting: churners who accept stay."""
        p = np.asarray(probability, dtype=np.float64)
        return np.asarray(p * self.accept_rate * clv, dtype=np.float64)

    def break_even(self, clv: float | None = None) -> float:
        """The churn probability above which contacting a customer worth `clv` pays (1.0 when
        it never does)."""
        value = self.clv if clv is None else clv
        d, f = self.incentive_cost, self.contact_cost
        gain = self.accept_rate * (value - d) - f + d + f  # slope of expected profit in p
        if gain <= 0:
            return 1.0
        return float(min(1.0, max(0.0, (d + f) / gain)))

    def capacity_bound(self) -> int | None:
        """The most customers any cut may contact (None: no bound): the capacity, or what the
        budget pays for at the cheapest expected cost per contact."""
        bounds = [] if self.capacity is None else [self.capacity]
        cheapest = self.contact_cost + self.incentive_cost * min(self.accept_rate, 1.0)
        if self.budget is not None and cheapest > 0:
            bounds.append(int(self.budget // cheapest))
        return min(bounds) if bounds else None

    def realized_profit(self, contacted: np.ndarray, churned: np.ndarray, clv: np.ndarray) -> float:
        """What contacting `contacted` earned once outcomes are known (acceptance at its
        mean): churners contacted are worth mean_gamma*(CLV-d)-f, the others cost d+f."""
        d, f = self.incentive_cost, self.contact_cost
        mask = np.asarray(contacted, dtype=bool)
        y = np.asarray(churned, dtype=np.int64)[mask]
        gain = self.accept_rate * (clv[mask] - d) - f
        return float(np.where(y == 1, gain, -(d + f)).sum())


@dataclass(frozen=True)
class Totals:
    """A campaign's figures: whom the cut contacts and what it is expected to cost and earn."""

    contacted: int = 0
    expected_cost: float = 0.0
    expected_retained: float = 0.0
    expected_profit: float = 0.0

    def plus(self, other: Totals) -> Totals:
        return Totals(
            self.contacted + other.contacted,
            self.expected_cost + other.expected_cost,
            self.expected_retained + other.expected_retained,
            self.expected_profit + other.expected_profit,
        )


def cut(profit: np.ndarray, cost: np.ndarray, economics: Economics) -> np.ndarray:
    """The contact decision over rows already ordered by expected profit, best first: positive
    expected profit, within the capacity, while the budget lasts (the first customer the
    budget cannot pay for ends the campaign)."""
    contact = np.asarray(profit, dtype=np.float64) > 0
    if economics.capacity is not None:
        contact[economics.capacity :] = False
    if economics.budget is not None:
        spent = np.cumsum(np.where(contact, cost, 0.0))
        contact &= spent <= economics.budget + 1e-9
        contact &= np.cumsum(~contact) == 0  # a prefix: none after the first left out
    return contact


def totals_of(
    probability: np.ndarray, clv: np.ndarray, contact: np.ndarray, economics: Economics
) -> Totals:
    p, c = np.asarray(probability)[contact], np.asarray(clv)[contact]
    return Totals(
        int(contact.sum()),
        float(economics.expected_cost(p).sum()),
        float(economics.expected_retained(p, c).sum()),
        float(economics.expected_profit(p, c).sum()),
    )


def decide(probability: np.ndarray, clv: np.ndarray, economics: Economics) -> np.ndarray:
    """The profit cut on a whole population (row order kept): True where contacted."""
    p = np.asarray(probability, dtype=np.float64)
    profit = economics.expected_profit(p, clv)
    order = np.argsort(-profit, kind="stable")
    contact = np.zeros(len(p), dtype=bool)
    contact[order] = cut(profit[order], economics.expected_cost(p[order]), economics)
    return contact


def top_share(probability: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    """The plain policy "contact the top `share` by probability" (ties by position)."""
    p = np.asarray(probability, dtype=np.float64)
    k = int(np.ceil(len(p) * share)) if len(p) else 0
    contact = np.zeros(len(p), dtype=bool)
    contact[np.argsort(-p, kind="stable")[:k]] = True
    return contact


@dataclass(frozen=True)
class RealizedProfit:
    """A labelled population: the cut's realized profit against two plain policies."""

    rows: int
    contacted: int
    profit: float
    contacted_top10: int
    profit_top10: float
    contacted_p50: int
    profit_p50: float


def realized(
    probability: np.ndarray, churned: np.ndarray, clv: np.ndarray, economics: Economics
) -> RealizedProfit:
    p = np.asarray(probability, dtype=np.float64)
    ours, top, half = decide(p, clv, economics), top_share(p), p >= PLAIN_THRESHOLD
    return RealizedProfit(
        rows=len(p),
        contacted=int(ours.sum()),
        profit=economics.realized_profit(ours, churned, clv),
        contacted_top10=int(top.sum()),
        profit_top10=economics.realized_profit(top, churned, clv),
        contacted_p50=int(half.sum()),
        profit_p50=economics.realized_profit(half, churned, clv),
    )
