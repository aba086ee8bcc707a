"""The synthetic market: bars as a pure function of (contract, time, whatToShow).

Every bar is built from atoms. One-minute atoms come straight from a smooth price path (a sum of
sines with per-contract phases, so any instant is computed without history) plus hashed noise;
one-second atoms are carved out of their minute so that they aggregate back to it exactly.
Coarser bars are reductions of atoms, so any request chunking returns the same bars and a daily
high is the highest one-minute high of its session. Prices are integers in units of
10**-decimals until they are formatted.

A bond's path is its price off a moving yield curve (ibsim.market.bonds), and its YIELD_* bars
are the yields of its quote bars (a price's high is a yield's low). A fund's path holds still
through each UTC day (one NAV a day), with no spread and no intraday range. A CFD's market is
its stock's (`Instrument.market_id` keys every hash and phase).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ibfacts.history import NO_VOLUME_WHAT
from ibsim.market import bonds
from ibsim.market.instruments import Instrument

YEAR = 365.25 * 86_400
TRADING_YEAR = 252 * 6.5 * 3_600
PERIODS = np.array([900.0, 9_000.0, 1.3, 6.1, 23.0, 97.0, 365.0, 1_500.0]) * np.array(
    [1, 1, 86_400, 86_400, 86_400, 86_400, 86_400, 86_400]
)
MAX_CYCLE = 90 * 86_400
_SALT = {"TRADES": 1, "ADJUSTED_LAST": 1, "AGGTRADES": 1, "MIDPOINT": 2, "BID": 2, "ASK": 2,
         "BID_ASK": 2, "YIELD_BID": 3, "YIELD_ASK": 3, "YIELD_BID_ASK": 3,
         "YIELD_LAST": 3}  # fmt: skip
# a bond's yield bars: the yields of these price bars
YIELD_OF = {"YIELD_BID": "BID", "YIELD_ASK": "ASK", "YIELD_BID_ASK": "BID_ASK",
            "YIELD_LAST": "TRADES"}  # fmt: skip
DAY = 86_400
_U64 = np.uint64


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fast, well-spread hash of uint64 arrays."""
    z = z + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def uniform(con_id: int, t: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) numbers keyed by (contract, t, salt), the same on every call."""
    key = _U64((con_id * 1_000_003 + salt * 7_919) % (1 << 64))
    z = _mix(np.asarray(t, dtype=np.int64).astype(_U64) ^ _mix(np.full(1, key))[0])
    return (z >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))


def mid_units(inst: Instrument, t: np.ndarray) -> np.ndarray:
    """The mid price at instants `t` (epoch seconds), on the tick grid."""
    t = np.asarray(t, dtype=np.float64)
    if inst.daily_price:
        t = np.floor(t / DAY) * DAY
    if inst.bond is not None:
        price = bonds.fair_price(inst.bond, t)
    else:
        phases = 2 * np.pi * uniform(inst.market_id, np.arange(len(PERIODS)), salt=99)
        # Slow cycles are capped at a quarter's amplitude, so the level stays within about a
        # third of the instrument's typical price over the years (AAPL stays AAPL-like).
        amplitudes = inst.volatility * np.sqrt(np.minimum(PERIODS, MAX_CYCLE) / YEAR) * 0.6
        angle = 2 * np.pi * t[:, None] / PERIODS + phases
        price = inst.price * np.exp((amplitudes * np.sin(angle)).sum(axis=1))
    ticks = np.maximum(np.rint(price / inst.min_tick), 1.0)
    return ticks.astype(np.int64) * inst.tick_units


@dataclass
class Atoms:
    """Consecutive building blocks of bars; prices in integer units."""

    start: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    count: np.ndarray
    wapv: np.ndarray  # wap * volume, so waps aggregate by summing

    def take(self, index: np.ndarray | slice) -> Atoms:
        return Atoms(*(getattr(self, f)[index] for f in _FIELDS))

    def __len__(self) -> int:
        return len(self.start)

    @staticmethod
    def concat(parts: list[Atoms]) -> Atoms:
        return Atoms(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = ("start", "open", "high", "low", "close", "volume", "count", "wapv")


def _half_spread(inst: Instrument) -> int:
    """The bid's and the ask's distance from the mid: a tick, none at a fund's NAV."""
    return 0 if inst.daily_price else inst.tick_units


def minute_atoms(inst: Instrument, starts: np.ndarray, what: str) -> Atoms:
    """One-minute atoms starting at `starts` (epoch seconds, multiples of 60)."""
    starts = np.asarray(starts, dtype=np.int64)
    if what in YIELD_OF:
        return _yields(inst, minute_atoms(inst, starts, YIELD_OF[what]))
    salt = _SALT[what]
    o = mid_units(inst, starts)
    c = mid_units(inst, starts + 60)
    sigma = inst.price * 10**inst.decimals * inst.volatility * np.sqrt(60 / TRADING_YEAR)
    scale = 0.0 if inst.daily_price else max(sigma * 0.4 / inst.tick_units, 1.0)
    up = np.floor(-np.log1p(-uniform(inst.market_id, starts, salt * 10 + 1)) * scale)
    down = np.floor(-np.log1p(-uniform(inst.market_id, starts, salt * 10 + 2)) * scale)
    high = np.maximum(o, c) + up.astype(np.int64) * inst.tick_units
    low = np.maximum(np.minimum(o, c) - down.astype(np.int64) * inst.tick_units, inst.tick_units)
    half = _half_spread(inst)
    if what == "BID_ASK":  # O/L from the bid, H/C from the ask
        o, low, high, c = o - half, low - half, high + half, c + half
    else:
        shift = {"BID": -half, "ASK": half}.get(what, 0)
        o, high, low, c = o + shift, high + shift, low + shift, c + shift
    volume, count = minute_volumes(inst, starts, what)
    wapv = (high + low + c) / 3.0 * volume
    return Atoms(starts, o, high, low, c, volume, count, wapv)


def minute_volumes(inst: Instrument, starts: np.ndarray, what: str) -> tuple[np.ndarray, ...]:
    """The volume and trade count of one-minute atoms (none for quotes, nor untraded things)."""
    if what in NO_VOLUME_WHAT or not inst.volume_per_minute:
        volume = np.zeros(len(starts), dtype=np.int64)
    else:
        u = uniform(inst.market_id, starts, _SALT[what] * 10 + 3)
        volume = np.floor(inst.volume_per_minute * (0.2 + 1.6 * u)).astype(np.int64)
    count = np.where(volume > 0, np.maximum(volume // 100, 1), 0)
    return volume, count


def _yields(inst: Instrument, prices: Atoms) -> Atoms:
    """A bond's price atoms as yield atoms, in the same units (percent, 10**-decimals): the
    yield at the minute's start of each price; the highest price is the lowest yield."""
    assert inst.bond is not None, "yields are a bond's"
    scale = 10**inst.decimals

    def to_yield(units: np.ndarray) -> np.ndarray:
        found = bonds.yield_of(inst.bond, prices.start, units / scale)
        return np.rint(found * scale).astype(np.int64)

    none = np.zeros(len(prices), dtype=np.int64)
    return Atoms(
        prices.start,
        to_yield(prices.open),
        to_yield(prices.low),
        to_yield(prices.high),
        to_yield(prices.close),
        none,
        none,
        none.astype(np.float64),
    )


def second_atoms(inst: Instrument, minutes: Atoms, what: str) -> Atoms:
    """Sixty one-second atoms per minute atom that aggregate back to it exactly."""
    k = len(minutes)
    tick = inst.tick_units
    o, h, lo, c = (x[:, None] for x in (minutes.open, minutes.high, minutes.low, minutes.close))
    seconds = minutes.start[:, None] + np.arange(61)[None, :]
    salt = _SALT[what] * 10
    key = seconds.ravel()

    def u(n: int) -> np.ndarray:
        return uniform(inst.market_id, key, salt + n).reshape(k, 61)

    lerp = o + (c - o) * (np.arange(61) / 60.0)
    room = np.minimum(h - lerp, lerp - lo)
    wiggle = (u(4) - 0.5) * 1.4 * room
    wiggle[:, 0] = wiggle[:, 60] = 0.0
    path = np.clip(np.rint((lerp + wiggle) / tick).astype(np.int64) * tick, lo, h)
    path[:, 0], path[:, 60] = minutes.open, minutes.close
    s_open, s_close = path[:, :60], path[:, 1:]
    top, bottom = np.maximum(s_open, s_close), np.minimum(s_open, s_close)
    s_high = top + np.floor(u(5)[:, :60] * (h - top) / tick / 2).astype(np.int64) * tick
    s_low = bottom - np.floor(u(6)[:, :60] * (bottom - lo) / tick / 2).astype(np.int64) * tick
    rows = np.arange(k)
    j_high = (u(7)[:, 0] * 60).astype(np.int64)
    j_low = (u(8)[:, 0] * 60).astype(np.int64)
    s_high[rows, j_high] = minutes.high
    s_low[rows, j_low] = minutes.low
    volume, count = second_volumes(inst, minutes, what, j_high)
    wapv = (s_high + s_low + s_close) / 3.0 * volume
    return Atoms(
        seconds[:, :60].ravel(),
        s_open.ravel(),
        s_high.ravel(),
        s_low.ravel(),
        s_close.ravel(),
        volume.ravel(),
        count.ravel(),
        wapv.ravel(),
    )


def second_volumes(
    inst: Instrument, minutes: Atoms, what: str, remainder_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each minute's volume and count shared among its sixty seconds, as (k, 60) arrays."""
    seconds = minutes.start[:, None] + np.arange(61)[None, :]
    weights = uniform(inst.market_id, seconds.ravel(), _SALT[what] * 10 + 9).reshape(-1, 61)
    weights = weights[:, :60] + 0.05
    volume = _split(minutes.volume, weights, remainder_at)
    return volume, _split(minutes.count, weights, remainder_at)


def _split(total: np.ndarray, weights: np.ndarray, remainder_at: np.ndarray) -> np.ndarray:
    """Integer shares of `total` in proportion to `weights` that sum to `total` exactly."""
    shares = np.floor(total[:, None] * weights / weights.sum(axis=1, keepdims=True))
    shares = shares.astype(np.int64)
    shares[np.arange(len(total)), remainder_at] += total - shares.sum(axis=1)
    return shares


def aggregate(atoms: Atoms, group_starts: np.ndarray) -> Atoms:
    """Reduce runs of atoms (each run starting at an index in `group_starts`) to bars."""
    ends = np.append(group_starts[1:], len(atoms)) - 1
    return Atoms(
        atoms.start[group_starts],
        atoms.open[group_starts],
        np.maximum.reduceat(atoms.high, group_starts),
        np.minimum.reduceat(atoms.low, group_starts),
        atoms.close[ends],
        np.add.reduceat(atoms.volume, group_starts),
        np.add.reduceat(atoms.count, group_starts),
        np.add.reduceat(atoms.wapv, group_starts),
    )
