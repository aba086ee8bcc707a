"""The implied volatility surface of an underlying: a term structure of at-the-money volatility
and a smile around it, fixed per underlying (no randomness, no history), so an option's
volatility is a pure function of (underlying, log-moneyness, time to expiry).

Term structure: at-the-money volatility rises from 85% of the underlying's own volatility (its
`volatility`, which drives its price path) for the nearest expiries towards 110% for long ones,
the upward slope equity volatility shows in calm markets. Smile: in standardised moneyness
x = ln(K/F) / (atm * sqrt(T)), the volatility is atm * (1 + skew * x + curve * x**2): a negative
skew (puts dearer than calls, as on every equity market since 1987), steeper for indices and
index funds than for single stocks, whose smiles are flatter and more curved. x is clipped to
+-5 standard deviations, and the result to [0.5, 3] times atm, so far wings stay finite.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ibsim.market.instruments import Instrument

SHORT_LEVEL, LONG_LEVEL, TERM_YEARS = 0.85, 1.10, 0.5  # atm / own volatility, and the bend
MIN_YEARS = 1 / 365  # moneyness of the last day is measured over a day, not a vanishing span
MAX_SIGMAS = 5.0


@dataclass(frozen=True)
class Surface:
    base: float  # the underlying's own volatility
    skew: float
    curve: float

    def atm(self, years: np.ndarray) -> np.ndarray:
        """At-the-money volatility for expiries `years` away."""
        bend = 1.0 - np.exp(-np.maximum(years, 0.0) / TERM_YEARS)
        return self.base * (SHORT_LEVEL + (LONG_LEVEL - SHORT_LEVEL) * bend)

    def vol(self, log_moneyness: np.ndarray, years: np.ndarray) -> np.ndarray:
        """Implied volatility at ln(strike / forward) for expiries `years` away."""
        atm = self.atm(years)
        x = np.asarray(log_moneyness) / (atm * np.sqrt(np.maximum(years, MIN_YEARS)))
        x = np.clip(x, -MAX_SIGMAS, MAX_SIGMAS)
        smile = 1.0 + self.skew * x + self.curve * x * x
        return atm * np.clip(smile, 0.5, 3.0)


@cache
def surface(underlying: Instrument) -> Surface:
    """The underlying's surface: index-like (IND, ETF, index futures) or single-stock shape."""
    index_like = underlying.sec_type in ("IND", "FUT") or underlying.stock_type == "ETF"
    skew, curve = (-0.12, 0.02) if index_like else (-0.06, 0.04)
    return Surface(underlying.volatility, skew, curve)
