"""Black-Scholes-Merton prices, greeks and implied volatility of European options.

One formula covers the three underlyings the gateway lists options on: a stock or ETF paying a
continuous dividend yield `carry` (Merton), an index (the same, with the index's yield) and a
future (Black-76: a future costs nothing to carry, so `carry` equals `rate`). Inputs broadcast
as numpy arrays, so a whole chain or a minute of seconds is priced in one call. Greeks come in
textbook units (vega per 1.00 of volatility, theta per year); `per_ib_units` converts them to
the units IB's tickOptionComputation reports (vega per volatility point, theta per calendar
day). Pure maths: imports numpy and the standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_VOL, MAX_VOL = 1e-4, 5.0  # the implied volatility solver's bracket
_SQRT2PI = math.sqrt(2 * math.pi)
# Chebyshev fit of erfc (Numerical Recipes, "erfcc"): relative error below 1.2e-7 everywhere,
# so even far tails keep their digits; numpy has no erf, and math.erf is one call per value.
_ERFC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
         -1.13520398, 1.48851587, -0.82215223, 0.17087277)  # fmt: skip


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """The standard normal distribution function; N(-x) = 1 - N(x) by construction."""
    z = np.abs(np.asarray(x, dtype=np.float64)) / math.sqrt(2)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.zeros_like(t)
    for c in reversed(_ERFC[1:]):
        poly = (poly + c) * t
    tail = 0.5 * t * np.exp(-z * z + _ERFC[0] + poly)  # N(-|x|)
    return np.where(np.asarray(x) < 0, tail, 1.0 - tail)


def norm_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.square(x)) / _SQRT2PI


@dataclass(frozen=True)
class Greeks:
    """Price and sensitivities per unit of underlying (one share, one index point)."""

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray  # per 1.00 (100 points) of volatility
    theta: np.ndarray  # per year, the value lost as time passes (negative for a long option)

    def per_ib_units(self) -> Greeks:
        """Vega per volatility point and theta per calendar day, as IB reports them."""
        return Greeks(self.price, self.delta, self.gamma, self.vega / 100, self.theta / 365)


def _args(spot, strike, years, vol):
    s, k, t, v = (np.asarray(a, dtype=np.float64) for a in (spot, strike, years, vol))
    return s, k, np.maximum(t, 0.0), np.maximum(v, MIN_VOL)


def greeks(
    spot: np.ndarray,
    strike: np.ndarray,
    years: np.ndarray,
    vol: np.ndarray,
    rate: float | np.ndarray,
    carry: float | np.ndarray,
    call: np.ndarray | bool,
) -> Greeks:
    """Price and greeks; an expired option (years <= 0) is worth its intrinsic value."""
    s, k, t, v = _args(spot, strike, years, vol)
    sign = np.where(call, 1.0, -1.0)
    live = t > 0
    root = np.sqrt(np.where(live, t, 1.0))
    d1 = (np.log(s / k) + (rate - carry + 0.5 * v * v) * np.where(live, t, 1.0)) / (v * root)
    d2 = d1 - v * root
    grow, discount = np.exp(-carry * t), np.exp(-rate * t)
    nd1, nd2 = norm_cdf(sign * d1), norm_cdf(sign * d2)
    price = sign * (s * grow * nd1 - k * discount * nd2)
    delta = sign * grow * nd1
    density = norm_pdf(d1)
    gamma = grow * density / (s * v * root)
    vega = s * grow * density * root
    theta = (
        -s * grow * density * v / (2 * root)
        - sign * rate * k * discount * nd2
        + sign * carry * s * grow * nd1
    )
    found = Greeks(price, delta, gamma, vega, theta)
    if live.all():
        return found
    expired = Greeks(
        np.maximum(sign * (s - k), 0.0),  # the intrinsic value
        np.where(sign * (s - k) > 0, sign, 0.0),
        *(np.zeros_like(price),) * 3,
    )
    return Greeks(*(np.where(live, getattr(found, f), getattr(expired, f)) for f in _GREEKS))


_GREEKS = ("price", "delta", "gamma", "vega", "theta")


def price(spot, strike, years, vol, rate, carry, call) -> np.ndarray:
    """The option's value per unit of underlying (see `greeks`)."""
    return greeks(spot, strike, years, vol, rate, carry, call).price


def pv_dividend(spot: float, years: float, dividend_yield: float) -> float:
    """The present value of the dividends paid before expiry, IB's pvDividend: what a
    continuous yield takes out of the underlying's price (nothing for a future)."""
    return spot * (1.0 - math.exp(-dividend_yield * max(years, 0.0)))


def implied_vol(
    value: np.ndarray,
    spot: np.ndarray,
    strike: np.ndarray,
    years: np.ndarray,
    rate: float,
    carry: float,
    call: np.ndarray | bool,
    guess: np.ndarray | float = 0.3,
) -> np.ndarray:
    """The volatilities at which the model is worth `value`; nan where none is (the value is
    not above the discounted intrinsic value and below the discounted underlying, or the option
    has expired). Newton steps on the log of the price (far from the money the price is
    exponential in volatility) from `guess`, each kept inside a shrinking bisection bracket: it
    converges wherever the answer lies in [MIN_VOL, MAX_VOL]. Vectorised: one solve for many."""
    value, spot, strike, years, guess, call = (
        np.asarray(a, dtype=np.float64)
        for a in np.broadcast_arrays(value, spot, strike, years, guess, call)
    )
    grow, discount = np.exp(-carry * years), np.exp(-rate * years)
    sign = np.where(call > 0, 1.0, -1.0)
    floor = np.maximum(sign * (spot * grow - strike * discount), 0.0)  # no volatility is worth less
    ceiling = np.where(call > 0, spot * grow, strike * discount)  # nor more
    solvable = (years > 0) & (spot > 0) & (strike > 0) & (value > floor) & (value < ceiling)
    low, high = np.full(value.shape, MIN_VOL), np.full(value.shape, MAX_VOL)
    vol = np.clip(guess, MIN_VOL, MAX_VOL)
    done = ~solvable
    for _ in range(100):
        g = greeks(spot, strike, years, vol, rate, carry, call > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.where(g.price > 0, np.log(g.price / np.where(solvable, value, 1.0)), -np.inf)
            done |= np.abs(gap) < 1e-10
            if done.all():
                break
            high = np.where(~done & (gap > 0), vol, high)
            low = np.where(~done & (gap <= 0), vol, low)
            step = np.where((g.price > 0) & (g.vega > 0), vol - gap * g.price / g.vega, low)
        vol = np.where(done, vol, np.where((low < step) & (step < high), step, (low + high) / 2))
        done |= high - low < 1e-12
    return np.where(solvable, vol, np.nan)
