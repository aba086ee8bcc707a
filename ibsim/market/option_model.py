"""An option's market as a function of its underlying's: model value, greeks and quote.

At any instant an option is worth the Black-Scholes-Merton value (Black-76 for an option on a
future) of its underlying's mid at that instant, with the volatility of the underlying's surface
(ibsim.market.surface) at the option's moneyness and time to expiry. Two approximations keep
every one-second atom a monotone function of the underlying's, so option bars aggregate exactly
as the underlying's do (ibsim.market.atoms): time to expiry and the volatility are those of the
minute's first second (the smile is sticky to the strike within a minute, and moves with the
underlying from one minute to the next).

Constants, approximated: one risk-free rate for every expiry, 4.5% (about where US Treasury
bills and SOFR stood through 2024-2025), continuously compounded; continuous dividend yields
close to the funds' and the index's trailing yields (S&P 500 about 1.3%, Apple about 0.5%), none
for other stocks; a future carries at the rate (Black-76), so it pays no dividend.

The quote around the model value: a spread of 0.01 + 0.03 * sqrt(value), widened by far
moneyness (1 + 5 * |ln(K/S)|), so cheap and far options are relatively wider; the bid rounds
down and the ask up to the option's market rule increments (rule 32: 0.01 below 3.00, 0.05 from
3.00), the bid is never negative and the ask at least one increment above it. A trade prints at
the model value on the increment grid, inside the quote, and at one increment at least.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import numpy as np

from ibsim.market import black_scholes as bs
from ibsim.market.calendars import sessions
from ibsim.market.instruments import MARKET_RULES, Instrument
from ibsim.market.options import underlying_of
from ibsim.market.prices import YEAR
from ibsim.market.surface import Surface, surface

RATE = 0.045
DIVIDEND_YIELDS = {"SPY": 0.013, "SPX": 0.013, "AAPL": 0.005}
SPREAD_BASE, SPREAD_SQRT, SPREAD_MONEYNESS = 0.01, 0.03, 5.0


@dataclass(frozen=True)
class Terms:
    """What pricing needs of one option, worked out once."""

    underlying: Instrument
    strike: float
    call: bool
    expires: int  # epoch seconds: the close of the expiry day's session
    dividend_yield: float
    carry: float  # the underlying's yield in the formula: its dividends, or the rate (future)
    surface: Surface
    increments: tuple[tuple[int, int], ...]  # (low edge, increment) in price units

    def years(self, at: np.ndarray) -> np.ndarray:
        return (self.expires - np.asarray(at, dtype=np.float64)) / YEAR

    def vol(self, reference: np.ndarray, years: np.ndarray) -> np.ndarray:
        """The surface's volatility when the underlying stands at `reference`."""
        forward = reference * np.exp((RATE - self.carry) * np.maximum(years, 0.0))
        return self.surface.vol(np.log(self.strike / forward), years)

    def greeks(self, spot, years, vol) -> bs.Greeks:
        return bs.greeks(spot, self.strike, years, vol, RATE, self.carry, self.call)


@cache
def terms(inst: Instrument) -> Terms:
    under = underlying_of(inst)
    future = under.sec_type == "FUT"
    dividend_yield = 0.0 if future else DIVIDEND_YIELDS.get(under.symbol, 0.0)
    scale = 10**inst.decimals
    increments = tuple(
        (round(edge * scale), round(step * scale)) for edge, step in MARKET_RULES[inst.market_rule]
    )
    return Terms(
        underlying=under,
        strike=inst.strike,
        call=inst.right == "C",
        expires=_expiry_instant(inst),
        dividend_yield=dividend_yield,
        carry=RATE if future else dividend_yield,
        surface=surface(under),
        increments=increments,
    )


def _expiry_instant(inst: Instrument) -> int:
    """The close of the option's session on its expiry date (the date's end if none)."""
    day = np.datetime64(inst.expiry(), "D")
    table = sessions(inst.venue, False)
    i = int(np.searchsorted(table.dates, day))
    if i < len(table) and table.dates[i] == day:
        return int(table.closes[i])
    return int(datetime.combine(inst.expiry(), datetime.max.time(), UTC).timestamp())


@dataclass(frozen=True)
class Valuation:
    """The model at some instants: value and greeks (textbook units), and the inputs."""

    greeks: bs.Greeks
    vol: np.ndarray
    years: np.ndarray
    spot: np.ndarray


def value(
    inst: Instrument, spot: np.ndarray, minute: np.ndarray, reference: np.ndarray
) -> Valuation:
    """The model at underlying mids `spot` in minutes starting `minute`, whose first second's
    mid was `reference` (price units throughout)."""
    t = terms(inst)
    years = t.years(minute)
    vol = t.vol(reference, years)
    return Valuation(t.greeks(spot, years, vol), vol, years, np.asarray(spot, dtype=np.float64))


def _step(t: Terms, units: np.ndarray) -> np.ndarray:
    """The market rule's increment at price `units`."""
    step = np.full(np.shape(units), t.increments[0][1], dtype=np.int64)
    for edge, increment in t.increments[1:]:
        step = np.where(units >= edge, increment, step)
    return step


def _grid(t: Terms, units: np.ndarray, how) -> np.ndarray:
    """`units` to the market rule's increments, by `how` (np.floor, np.ceil or nearest); the
    rounding to 1e-6 first keeps float noise from pushing a value off its grid point."""
    step = _step(t, units)
    return (how(np.round(units / step, 6)) * step).astype(np.int64)


def _nearest(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)


def quote_units(
    inst: Instrument, model: np.ndarray, reference: np.ndarray
) -> dict[str, np.ndarray]:
    """The BID, ASK, MIDPOINT and TRADES prices in integer units at model values `model` (the
    underlying at `reference` fixing the moneyness): each a non-decreasing function of `model`,
    as the atoms need."""
    t = terms(inst)
    scale = 10**inst.decimals
    width = 1 + SPREAD_MONEYNESS * np.abs(np.log(t.strike / reference))
    half = width * (SPREAD_BASE + SPREAD_SQRT * np.sqrt(np.maximum(model, 0.0))) / 2
    bid = np.maximum(_grid(t, (model - half) * scale, np.floor), 0)
    ask = np.maximum(_grid(t, (model + half) * scale, np.ceil), bid + _step(t, bid))
    lowest = np.maximum(bid, t.increments[0][1])  # a trade prints at one increment at least
    trade = np.clip(_grid(t, model * scale, _nearest), lowest, ask)
    return {"BID": bid, "ASK": ask, "MIDPOINT": (bid + ask) // 2, "TRADES": trade}
