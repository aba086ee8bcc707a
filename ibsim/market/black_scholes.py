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
    intrinsic = np.maximum(sign * (s - k), 0.0)
    in_money = np.where(sign * (s - k) > 0, sign, 0.0)
    zero = np.zeros_like(price)
    return Greeks(
        np.where(live, price, intrinsic),
        np.where(live, delta, in_money),
        np.where(live, gamma, zero),
        np.where(live, vega, zero),
        np.where(live, theta, zero),
    )


def price(spot, strike, years, vol, rate, carry, call) -> np.ndarray:
    """The option's value per unit of underlying (see `greeks`)."""
    return greeks(spot, strike, years, vol, rate, carry, call).price


def pv_dividend(spot: float, years: float, dividend_yield: float) -> float:
    """The present value of the dividends paid before expiry, IB's pvDividend: what a
    continuous yield takes out of the underlying's price (nothing for a future)."""
    return spot * (1.0 - math.exp(-dividend_yield * max(years, 0.0)))


def implied_vol(
    value: float, spot: float, strike: float, years: float, rate: float, carry: float, call: bool
) -> float | None:
    """The volatility at which the model is worth `value`; None when no volatility is (the
    value is below the discounted intrinsic value or above the discounted underlying, or the
    option has expired). Newton steps kept inside a shrinking bisection bracket: it converges
    wherever the answer lies in [MIN_VOL, MAX_VOL]."""
    if years <= 0 or value <= 0 or spot <= 0 or strike <= 0:
        return None

    def at(vol: float) -> Greeks:
        return greeks(spot, strike, years, vol, rate, carry, call)

    low, high = MIN_VOL, MAX_VOL
    if not float(at(low).price) <= value <= float(at(high).price):
        return None
    vol = 0.3
    for _ in range(100):
        g = at(vol)
        diff = float(g.price) - value
        if abs(diff) <= 1e-13 * spot:
            return vol
        low, high = (low, vol) if diff > 0 else (vol, high)
        step = vol - diff / float(g.vega) if float(g.vega) > 1e-12 else -1.0
        vol = step if low < step < high else (low + high) / 2
        if high - low < 1e-12:
            break
    return vol
