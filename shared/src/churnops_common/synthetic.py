"""Deterministic synthetic subscription-churn data with drift knobs.

`drift` in [0, 1] moves the population (younger, shorter tenure, more month-to-month contracts,
higher prices, more support calls, a new region mix) *and* the churn mechanism (price sensitivity
rises, a competitor in the south region, support calls matter more, satisfaction matters less).
So a model trained at drift 0 measurably degrades at drift 1, and one retrained on drifted data
recovers.

`loyalty` in [0, 1] moves the population only, toward established customers (longer tenure,
longer contracts, fewer support calls, happier), as after a loyalty campaign or an acquisition
of a business book; who churns, given their columns, does not change. A calibrated model stays
calibrated (the premise of label-free estimates), but it has fewer churners to find, so its
PR-AUC on such a batch falls, and the estimate says so before any label lands.
Column meanings: `data/data_descriptions.csv`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

REGIONS = np.array(["north", "south", "east", "west", "central"])
CONTRACTS = np.array(["month-to-month", "one-year", "two-year"])
PAYMENTS = np.array(["electronic-check", "mailed-check", "bank-transfer", "credit-card"])
INTERNET = np.array(["fiber", "dsl", "none"])


def _mix(base: np.ndarray, drifted: np.ndarray, drift: float) -> np.ndarray:
    probs = (1 - drift) * base + drift * drifted
    return probs / probs.sum()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _calibrate_intercept(logits: np.ndarray, target_rate: float) -> float:
    """Shift so the mean churn probability is `target_rate` (bisection; deterministic)."""
    low, high = -20.0, 20.0
    for _ in range(60):
        mid = (low + high) / 2
        if _sigmoid(logits + mid).mean() < target_rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def _area_codes(rows: int, seed: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(area code per row, its churn log-odds effect): a high-cardinality categorical with a
    long tail (Zipf-like frequencies) whose levels carry real risk. Drawn from a generator of
    its own, so the other columns are the same with or without it."""
    rng = np.random.default_rng([seed, 7919])
    names = np.array([f"A{i:03d}" for i in range(levels)])
    weights = 1.0 / np.arange(1, levels + 1) ** 0.8
    code = rng.choice(levels, rows, p=weights / weights.sum())
    effect = rng.normal(0.0, 0.8, levels)
    return names[code], effect[code]


def generate(
    rows: int, seed: int = 0, drift: float = 0.0, levels: int = 0, loyalty: float = 0.0
) -> pd.DataFrame:
    """A churn table of `rows` customers; the same arguments give the same table. `levels` > 0
    adds `area_code`, a categorical column with that many levels."""
    import pandas as pd

    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0.0 <= drift <= 1.0:
        raise ValueError("drift must be between 0 and 1")
    if not 0.0 <= loyalty <= 1.0:
        raise ValueError("loyalty must be between 0 and 1")
    if levels < 0:
        raise ValueError("levels must be 0 (no area code) or more")
    rng = np.random.default_rng(seed)
    columns = _customers(rng, rows, drift, loyalty)
    area, area_effect = _area_codes(rows, seed, levels) if levels else (None, 0.0)
    logit = _churn_logit(columns, drift, rng) + area_effect
    # The intercept sets the churn rate of the population before any loyalty shift, so a shift
    # changes who the customers are, never how a given customer churns.
    unshifted = logit
    if loyalty:
        again = np.random.default_rng(seed)
        unshifted = _churn_logit(_customers(again, rows, drift, 0.0), drift, again) + area_effect
    probability = _sigmoid(logit + _calibrate_intercept(unshifted, 0.19 + 0.05 * drift))
    churned = (rng.random(rows) < probability).astype(int)

    frame = pd.DataFrame({"customer_id": [f"C{seed:04d}-{i:07d}" for i in range(rows)], **columns})
    frame["churned"] = churned
    if area is not None:
        frame.insert(list(frame.columns).index("payment_method") + 1, "area_code", area)
    # Real data has holes: a few percent missing in some columns.
    for column, share in (
        ("total_charges", 0.01),
        ("avg_weekly_usage_hours", 0.03),
        ("days_since_last_login", 0.02),
        ("satisfaction_score", 0.05),
    ):
        frame.loc[rng.random(rows) < share, column] = np.nan
    return frame


def _customers(
    rng: np.random.Generator, rows: int, d: float, loyal: float
) -> dict[str, np.ndarray]:
    """The customers' columns, in file order. The same draws whatever `d` and `loyal` are, so
    shifted and unshifted tables of one seed are the same customers, moved."""
    region = rng.choice(
        REGIONS,
        rows,
        p=_mix(np.array([0.25, 0.2, 0.2, 0.2, 0.15]), np.array([0.15, 0.45, 0.15, 0.15, 0.10]), d),
    )
    age = np.clip(rng.normal(46 - 9 * d, 14, rows), 18, 90).round().astype(int)
    contract_mix = _mix(np.array([0.5, 0.27, 0.23]), np.array([0.75, 0.15, 0.10]), d)
    contract = rng.choice(
        CONTRACTS, rows, p=_mix(contract_mix, np.array([0.15, 0.35, 0.50]), loyal)
    )
    tenure = np.clip(rng.exponential(32 - 14 * d + 28 * loyal, rows), 0, 72).round().astype(int)
    internet = rng.choice(
        INTERNET, rows, p=_mix(np.array([0.42, 0.38, 0.20]), np.array([0.60, 0.30, 0.10]), d)
    )
    base_price = np.select([internet == "fiber", internet == "dsl"], [70.0, 50.0], 22.0)
    monthly = np.round(base_price * (1 + 0.25 * d) + rng.gamma(2.0, 6.0, rows), 2)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.normal(1.0, 0.03, rows), 2)
    payment = rng.choice(
        PAYMENTS,
        rows,
        p=_mix(np.array([0.34, 0.22, 0.22, 0.22]), np.array([0.45, 0.15, 0.20, 0.20]), d),
    )
    support_calls = rng.poisson((1.1 + 1.4 * d) * (1 - 0.5 * loyal), rows)
    products = rng.choice([1, 2, 3, 4], rows, p=[0.45, 0.33, 0.15, 0.07])
    paperless = rng.choice(np.array(["yes", "no"]), rows, p=[0.6, 0.4])
    usage = np.round(rng.gamma(3.0, 3.5 - 1.0 * d, rows), 2)
    last_login = np.round(rng.exponential(9 + 6 * d, rows), 1)
    satisfaction = np.clip(rng.normal(3.6 - 0.5 * d + 0.6 * loyal, 1.0, rows).round(), 1, 5)
    return {
        "region": region,
        "age": age,
        "tenure_months": tenure,
        "contract": contract,
        "internet_service": internet,
        "payment_method": payment,
        "paperless_billing": paperless,
        "monthly_charges": monthly,
        "total_charges": total,
        "num_products": products,
        "support_calls": support_calls,
        "avg_weekly_usage_hours": usage,
        "days_since_last_login": last_login,
        "satisfaction_score": satisfaction,
    }


def _churn_logit(c: dict[str, np.ndarray], d: float, rng: np.random.Generator) -> np.ndarray:
    """Each customer's churn log-odds, before the intercept. Churn is not additive in the
    log-odds, and a generator that is would make logistic regression the true model: risk
    falls steeply over the first year (the early-tenure cliff), most of all for month-to-month
    customers; support calls hurt once they pile up; disengaged customers leave; fiber's top
    prices push harder than its base price."""
    month_to_month = c["contract"] == "month-to-month"
    tenure, monthly = c["tenure_months"], c["monthly_charges"]
    calls, usage = c["support_calls"], c["avg_weekly_usage_hours"]
    fiber = c["internet_service"] == "fiber"
    logit: np.ndarray = (
        1.0 * month_to_month
        - 0.9 * (c["contract"] == "two-year")
        + 0.9 * (tenure < 6)
        + 0.5 * (tenure < 12)
        + 0.8 * month_to_month * (tenure < 12)
        - 0.015 * tenure
        + (0.012 + 0.03 * d) * (monthly - 65)  # price sensitivity grows with drift
        + 0.5 * fiber * (monthly > 85)
        + (0.12 + 0.25 * d) * calls
        + 0.9 * (calls >= 4)
        + 0.45 * (c["payment_method"] == "electronic-check")
        + 0.35 * fiber
        - 0.25 * (c["num_products"] - 1)
        - (0.45 - 0.35 * d) * (c["satisfaction_score"] - 3)  # matters less after drift
        + 0.04 * np.minimum(c["days_since_last_login"], 40)
        + 0.9 * (usage < 3)
        - 0.03 * usage
        + 1.6 * d * (c["region"] == "south")  # a competitor arrives in the south
        - 0.012 * (c["age"] - 45)
        + rng.normal(0, 0.35, len(tenure))
    )
    return logit
