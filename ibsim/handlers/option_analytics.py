"""Option analytics on the wire: tickOptionComputation for options' market data, the generic
ticks of options and their underlyings, and calculateImpliedVolatility / calculateOptionPrice.

IB's tick types (TWS API "Tick Types" page): 10, 11, 12 and 13 are the computations at the bid,
the ask, the last price and the model (80-83 delayed), 53 a computation a client asked for
(calculateImpliedVolatility, calculateOptionPrice). Each carries tickAttrib (0 return-based,
1 price-based: this gateway's volatilities are price-based), the implied volatility, delta,
option price, pvDividend, gamma, vega (per volatility point), theta (per calendar day) and
the underlying price, with -1 (volatility, prices, pvDividend) and -2 (greeks) for a value
not computed. Generic ticks (genericTickList): 100 option volume (29 call, 30 put) and 101 open
interest (27 call, 28 put), on the underlying and on the option itself; 104 historical
volatility (23) and 106 implied volatility (24) on the underlying; 588 futures open interest
(86).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime

import numpy as np

from ibsim.handlers.client import Client
from ibsim.handlers.fields import FieldReader
from ibsim.handlers.historical import resolve
from ibsim.market import black_scholes as bs
from ibsim.market import errors
from ibsim.market.atoms import valuation_at
from ibsim.market.instruments import Instrument
from ibsim.market.option_model import RATE, terms
from ibsim.market.options import OPTION_TYPES
from ibsim.market.quotes import Quote
from ibsim.market.volatility import historical_vol, implied_vol_30d, open_interest, option_volume

BID, ASK, LAST, MODEL, CUSTOM = 10, 11, 12, 13, 53
DELAYED_COMPUTATION = {BID: 80, ASK: 81, LAST: 82, MODEL: 83}
PRICE_BASED = 1
NOT_COMPUTED = (-1.0, -2.0)  # volatility and prices; greeks
CALL_OI, PUT_OI, CALL_VOLUME, PUT_VOLUME, FUTURES_OI = 27, 28, 29, 30, 86
HISTORICAL_VOL, IMPLIED_VOL = 23, 24


def _number(x: float) -> str:
    return f"{x:.10g}"


def computation(
    spot: float, years: float, value: float, vol: float | None, inst: Instrument
) -> tuple[str, ...]:
    """The eight values of a tickOptionComputation: at `vol` (None: not computed)."""
    t = terms(inst)
    pv = bs.pv_dividend(spot, years, t.dividend_yield)
    if vol is None:
        return tuple(_number(x) for x in (-1, -2, value, pv, -2, -2, -2, spot))
    g = t.greeks(spot, years, vol).per_ib_units()
    fields = (vol, g.delta, value, pv, g.gamma, g.vega, g.theta, spot)
    return tuple(_number(float(x)) for x in fields)


def implied(inst: Instrument, values, spot: float, years: float, guess: float = 0.3) -> list:
    """The implied volatility of each of `values` (None where there is none)."""
    t = terms(inst)
    vols = bs.implied_vol(values, spot, t.strike, years, RATE, t.carry, t.call, guess)
    return [None if np.isnan(v) else float(v) for v in np.atleast_1d(vols)]


def computations(inst: Instrument, q: Quote) -> dict[int, tuple[str, ...]]:
    """The bid, ask, last and model computations behind quote `q` of an option."""
    v = valuation_at(inst, q.at)
    spot, years, vol = float(v.spot[0]), float(v.years[0]), float(v.vol[0])
    found = {MODEL: computation(spot, years, float(v.greeks.price[0]), vol, inst)}
    prices = (q.bid, q.ask, q.last)
    vols = implied(inst, prices, spot, years, vol)
    for tick, price, at_vol in zip((BID, ASK, LAST), prices, vols, strict=True):
        found[tick] = computation(spot, years, price, at_vol, inst)
    return found


def computation_messages(
    req_id: int, new: dict[int, tuple], old: dict[int, tuple], delayed: bool
) -> Iterator[tuple]:
    """tickOptionComputation (21) for the computations that changed."""
    for tick, fields in new.items():
        if fields != old.get(tick):
            sent = DELAYED_COMPUTATION[tick] if delayed else tick
            yield 21, req_id, sent, PRICE_BASED, *fields


def generic_values(inst: Instrument, generic: frozenset[int], now: datetime) -> dict[int, str]:
    """The generic ticks asked for that apply to `inst` (counts and volatilities as text)."""
    values: dict[int, str] = {}
    option, underlying = inst.sec_type in OPTION_TYPES, inst.sec_type in ("STK", "IND")
    for tick, ticks, counts in (
        (101, (CALL_OI, PUT_OI), open_interest),
        (100, (CALL_VOLUME, PUT_VOLUME), option_volume),
    ):
        if tick in generic and (option or underlying):
            pair = dict(zip(ticks, counts(inst, now), strict=True))
            if option:  # an option has its own side only
                own = ticks[inst.right == "P"]
                pair = {own: pair[own]}
            values |= {t: str(n) for t, n in pair.items()}
    if 588 in generic and inst.sec_type == "FUT":
        values[FUTURES_OI] = str(sum(open_interest(inst, now)))
    if 104 in generic and underlying:
        values[HISTORICAL_VOL] = _number(historical_vol(inst, now))
    if 106 in generic and underlying:
        values[IMPLIED_VOL] = _number(implied_vol_30d(inst))
    return values


def generic_messages(req_id: int, new: dict[int, str], old: dict[int, str]) -> Iterator[tuple]:
    """tickGeneric (45) for the volatilities, tickSize (2) for the counts, when they change."""
    for tick, value in new.items():
        if value != old.get(tick):
            message = 45 if tick in (HISTORICAL_VOL, IMPLIED_VOL) else 2
            yield message, 6, req_id, tick, value


# ------------------------------------------------------------------- calculations (54-57)
def _calculation(client: Client, msg: FieldReader) -> tuple[int, Instrument, float, float, float]:
    """The request, its option, the value it gives (price or volatility), the underlying price
    and the years to expiry from the gateway's now."""
    msg.skip()  # version
    req_id = msg.request_id()
    inst = resolve(client.state.catalog, msg.contract())
    given, spot = msg.float(), msg.float()
    if inst.sec_type not in OPTION_TYPES:
        raise errors.invalid_request(f"{inst.local_symbol} is not an option")
    if not (math.isfinite(spot) and spot > 0):
        raise errors.invalid_request(f"Invalid underlying price {spot}")
    years = float(terms(inst).years(np.array(client.now().timestamp())))
    return req_id, inst, given, spot, years


def calculate_implied_volatility(client: Client, msg: FieldReader) -> None:
    req_id, inst, price, spot, years = _calculation(client, msg)
    if not (math.isfinite(price) and price > 0):
        raise errors.invalid_request(f"Invalid option price {price}")
    [vol] = implied(inst, price, spot, years)
    client.send(21, req_id, CUSTOM, PRICE_BASED, *computation(spot, years, price, vol, inst))


def calculate_option_price(client: Client, msg: FieldReader) -> None:
    req_id, inst, vol, spot, years = _calculation(client, msg)
    if not (math.isfinite(vol) and vol > 0):
        raise errors.invalid_request(f"Invalid volatility {vol}")
    value = float(terms(inst).greeks(spot, years, vol).price)
    client.send(21, req_id, CUSTOM, PRICE_BASED, *computation(spot, years, value, vol, inst))


def cancel_calculation(client: Client, msg: FieldReader) -> None:
    """The answer went out with the request: nothing is left to cancel."""
    msg.skip()
    msg.request_id()
