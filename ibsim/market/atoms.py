"""The atoms of any instrument: its own price path (ibsim.market.prices), or, for an option, its
underlying's atoms priced through the option model (ibsim.market.option_model).

An option's one-second (and one-minute) atom is its underlying's mid atom (the mean of the BID
and ASK atoms, the mid the underlying's quote shows) mapped through the option's price: open
from open, close from close, and high and low from the underlying's high and low (swapped for a
put, whose price falls as the underlying rises). Within a minute the mapping is one
non-decreasing function of the underlying (ibsim.market.option_model), so the seconds
aggregate back to their minute exactly, as every other instrument's do; bars and quotes read
the option through here, so a streamed quote and a historical bar agree. Volumes are the
option's own (hashed from its conId), shared among seconds like any instrument's.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ibsim.market import prices
from ibsim.market.instruments import Instrument
from ibsim.market.option_model import Valuation, quote_units, value
from ibsim.market.options import OPTION_TYPES, underlying_of
from ibsim.market.prices import Atoms

Mid = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # open, high, low, close


def minute_atoms(inst: Instrument, starts: np.ndarray, what: str) -> Atoms:
    """One-minute atoms starting at `starts` (epoch seconds, multiples of 60)."""
    if inst.sec_type not in OPTION_TYPES:
        return prices.minute_atoms(inst, starts, what)
    starts = np.asarray(starts, dtype=np.int64)
    volume, count = prices.minute_volumes(inst, starts, what)
    return _priced(inst, what, starts, _quotes(inst, starts.tobytes(), False), volume, count)


def second_atoms(inst: Instrument, minutes: Atoms, what: str) -> Atoms:
    """Sixty one-second atoms per minute atom that aggregate back to it exactly."""
    if inst.sec_type not in OPTION_TYPES:
        return prices.second_atoms(inst, minutes, what)
    first = np.zeros(len(minutes), dtype=np.int64)
    volume, count = prices.second_volumes(inst, minutes, what, first)
    starts = (minutes.start[:, None] + np.arange(60)[None, :]).ravel()
    quotes = _quotes(inst, minutes.start.tobytes(), True)
    return _priced(inst, what, starts, quotes, volume.ravel(), count.ravel())


@lru_cache(maxsize=1024)
def _quotes(inst: Instrument, minutes: bytes, seconds: bool) -> dict[str, np.ndarray]:
    """The option's prices (open/high/low/close rows) at its underlying's mid atoms in the
    minutes starting at `minutes`: one-minute atoms, or one-second atoms."""
    under = underlying_of(inst)
    reference = _minute_mids(under, minutes)[0]
    mid = _second_mids(under, minutes) if seconds else _minute_mids(under, minutes)
    minute = np.frombuffer(minutes, dtype=np.int64)
    if seconds:
        minute, reference = np.repeat(minute, 60), np.repeat(reference, 60)
    o, h, lo, c = mid
    if inst.right == "P":  # a put's highest price is at the underlying's low
        h, lo = lo, h
    model = value(inst, np.stack([o, h, lo, c]), minute, reference).greeks.price
    return quote_units(inst, model, reference)


def _priced(
    inst: Instrument,
    what: str,
    starts: np.ndarray,
    quotes: dict[str, np.ndarray],
    volume: np.ndarray,
    count: np.ndarray,
) -> Atoms:
    """Atoms of the option from its prices: the `what` row of each."""
    if what == "BID_ASK":  # O/L from the bid, H/C from the ask, as the other instruments
        bid, ask = quotes["BID"], quotes["ASK"]
        o, h, lo, c = bid[0], ask[1], bid[2], ask[3]
    else:  # an option pays no dividend: its adjusted prices are its trades
        o, h, lo, c = quotes["TRADES" if what == "ADJUSTED_LAST" else what]
    wapv = (h + lo + c) / 3.0 * volume
    return Atoms(starts, o, h, lo, c, volume, count, wapv)


@lru_cache(maxsize=256)
def _minute_mids(under: Instrument, starts: bytes) -> Mid:
    """The underlying's mid one-minute atoms (shared by every option on it)."""
    minutes = np.frombuffer(starts, dtype=np.int64)
    return _mid(under, prices.minute_atoms(under, minutes, "BID"),
                prices.minute_atoms(under, minutes, "ASK"))  # fmt: skip


@lru_cache(maxsize=256)
def _second_mids(under: Instrument, starts: bytes) -> Mid:
    """The underlying's mid one-second atoms in the minutes starting at `starts`."""
    minutes = np.frombuffer(starts, dtype=np.int64)
    bid, ask = (
        prices.second_atoms(under, prices.minute_atoms(under, minutes, side), side)
        for side in ("BID", "ASK")
    )
    return _mid(under, bid, ask)


def _mid(under: Instrument, bid: Atoms, ask: Atoms) -> Mid:
    scale = 2.0 * 10**under.decimals
    return tuple(
        (getattr(bid, f) + getattr(ask, f)) / scale for f in ("open", "high", "low", "close")
    )


def valuation_at(inst: Instrument, at: int) -> Valuation:
    """The model behind the option's quote in second `at`: at its underlying's mid of that
    second, with the minute's time to expiry and volatility (as the atoms)."""
    minute = at // 60 * 60
    key = np.array([minute], dtype=np.int64).tobytes()
    under = underlying_of(inst)
    spot = _second_mids(under, key)[3][at - minute]
    reference = _minute_mids(under, key)[0]
    return value(inst, np.array([spot]), np.array([minute]), reference)
