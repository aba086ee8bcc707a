"""US Treasury notes and bonds: their terms, and their prices made from a yield curve.

How a bond's price is made (deterministic, a pure function of the bond and the instant):

1. **The curve.** A fixed Treasury curve, linear in maturity between a few tenors (`CURVE`, par
   yields in percent of a plausible mid-2020s shape), is moved by a shift common to every bond:
   a sum of slow sines of time (periods of weeks to years, at most `SHIFT_BP` basis points), so
   the whole curve drifts the way rates do and never jumps.
2. **The bond's yield** is the curve read at the bond's remaining life, plus the shift.
3. **The price** is the clean price in percent of par for that yield, by the street convention:
   semi-annual coupons of coupon/2, the time to the next coupon counted as a fraction of a
   half-year, the dirty price discounted at y/2 per half-year, minus the accrued interest
   (coupon/2 times the part of the half-year gone).

What is approximated: the half-years are 182.625-day periods counted back from maturity, not
the actual/actual day count on the real coupon dates; settlement is the instant itself (no T+1);
the curve is a made-up shape, not a fitted one; positions are valued at the clean price, and no
accrued interest is booked on a trade. Quotes add the gateway's usual noise and spread on top
of this price (ibsim.market.prices), and the yield of a quote (YIELD_* bars) is found back
from its price by bisection, so a bid's yield is above its ask's, as on a real screen.

Imports nothing from ibsim: the instruments (ibsim.market.instruments) hold `BondTerms`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

YEAR_SECONDS = 365.25 * 86_400
HALF_YEAR = YEAR_SECONDS / 2
# (years to maturity, par yield in percent): the curve the shift moves
CURVE = ((0.25, 5.3), (2.0, 4.7), (5.0, 4.3), (10.0, 4.3), (30.0, 4.5))
SHIFT_BP = 60.0
_SHIFT_PERIODS = np.array([23.0, 97.0, 365.0, 1_500.0]) * 86_400
_SHIFT_WEIGHTS = np.array([0.1, 0.25, 0.3, 0.35])
_SHIFT_PHASES = np.array([0.4, 2.1, 4.0, 5.3])
_SEARCH_STEPS = 48  # bisection steps: the yield to better than 1e-12 of its bracket


@dataclass(frozen=True)
class BondTerms:
    """What IB's bond contract details (message 18) say of a bond, besides its contract."""

    cusip: str
    coupon: float  # percent a year, paid semi-annually
    issue_date: str  # yyyymmdd
    maturity: str  # yyyymmdd
    ratings: str = ""
    bond_type: str = "US-T"
    coupon_type: str = "FIXED"
    desc_append: str = ""

    def maturity_epoch(self) -> int:
        day = datetime.strptime(self.maturity, "%Y%m%d").replace(tzinfo=UTC)
        return int(day.timestamp())


def curve_yield(years: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The yield in percent for `years` to maturity at instants `t` (epoch seconds)."""
    tenors, rates = zip(*CURVE, strict=True)
    base = np.interp(years, tenors, rates)
    angle = 2 * np.pi * np.asarray(t, dtype=np.float64)[:, None] / _SHIFT_PERIODS + _SHIFT_PHASES
    shift = (np.sin(angle) * _SHIFT_WEIGHTS).sum(axis=1) * SHIFT_BP / 100
    return base + shift


def clean_price(terms: BondTerms, t: np.ndarray, yield_pct: np.ndarray) -> np.ndarray:
    """The clean price in percent of par at instants `t` for yields `yield_pct` (percent)."""
    periods = np.maximum((terms.maturity_epoch() - np.asarray(t, dtype=np.float64)) / HALF_YEAR, 0)
    n = np.maximum(np.ceil(periods), 1.0)  # coupons still to be paid
    w = periods - (n - 1)  # half-years to the next coupon, in (0, 1]
    v = 1.0 / (1.0 + np.asarray(yield_pct, dtype=np.float64) / 200)
    half = terms.coupon / 2
    annuity = np.where(np.isclose(v, 1.0), n, (1 - v**n) / np.where(v == 1.0, 1.0, 1 - v))
    dirty = v**w * (half * annuity + 100 * v ** (n - 1))
    return dirty - half * (1 - w)


def yield_of(terms: BondTerms, t: np.ndarray, price: np.ndarray) -> np.ndarray:
    """The yield in percent whose clean price is `price` at `t`: bisection on a bracket of
    -5% to 50%, where the price falls as the yield rises."""
    t = np.asarray(t, dtype=np.float64)
    price = np.asarray(price, dtype=np.float64)
    low, high = np.full(price.shape, -5.0), np.full(price.shape, 50.0)
    for _ in range(_SEARCH_STEPS):
        mid = (low + high) / 2
        too_cheap = clean_price(terms, t, mid) < price  # yield too high
        high = np.where(too_cheap, mid, high)
        low = np.where(too_cheap, low, mid)
    return (low + high) / 2


def fair_price(terms: BondTerms, t: np.ndarray) -> np.ndarray:
    """The clean price in percent of par at instants `t`, off the moving curve."""
    t = np.asarray(t, dtype=np.float64)
    years = np.maximum((terms.maturity_epoch() - t) / YEAR_SECONDS, 0.0)
    return clean_price(terms, t, curve_yield(years, t))


def cusip_check_digit(base: str) -> str:
    """The ninth character of a CUSIP from its first eight (the CUSIP Global Services rule:
    letters count 10.., every second value doubled, the digits summed, ten's complement)."""
    total = 0
    for i, ch in enumerate(base.upper()):
        value = int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10
        value = value * 2 if i % 2 else value
        total += value // 10 + value % 10
    return str((10 - total % 10) % 10)


def isin_of(cusip: str, country: str = "US") -> str:
    """The ISIN of a CUSIP: country, CUSIP, and the Luhn check digit of its digits."""
    body = country + cusip
    digits = "".join(str(int(ch, 36)) for ch in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        value = int(ch) * 2 if i % 2 == 0 else int(ch)
        total += value // 10 + value % 10
    return body + str((10 - total % 10) % 10)


def description(terms: BondTerms) -> str:
    """IB's short name of a Treasury: `US-T 4 02/15/34` (coupon, maturity mm/dd/yy)."""
    day = date(int(terms.maturity[:4]), int(terms.maturity[4:6]), int(terms.maturity[6:]))
    return f"{terms.bond_type} {terms.coupon:g} {day:%m/%d/%y}"
