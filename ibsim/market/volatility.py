"""Statistics of options and their underlyings: open interest, option volume, and the implied
and historical volatilities the generic ticks and the volatility bars show.

Open interest is fixed per option and session date (IB publishes it once a day): a bell in
moneyness around the underlying's typical price, scaled by a hash of (conId, date). Option
volume so far today is approximated by each option's expected volume (its mean per minute times
the session's minutes so far), not by summing every option's traded atoms, which would price
the whole chain for one tick. An underlying's figures sum its chain's calls and puts. Implied
volatility is the surface's 30-day at-the-money volatility (ibsim.market.surface); historical
volatility is the annualised standard deviation of the last 30 daily close-to-close log
returns of the underlying's TRADES day bars, the closes its bars show. A volatility bar holds
one value (open = high = low = close): the implied volatility (fixed, as the surface is), or the
historical volatility of the 30 returns ending at the bar's close.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import numpy as np

from ibsim.market.bars import Bars, bars_between, window_start_by_sessions
from ibsim.market.calendars import sessions
from ibsim.market.instruments import Instrument
from ibsim.market.options import OPTION_TYPES, chain, underlying_of
from ibsim.market.prices import Atoms, uniform
from ibsim.market.surface import surface

VOL_DECIMALS = 6  # the digits a volatility bar carries (0.187435)
HV_RETURNS = 30
IV_DAYS = 30
OI_PEAK, OI_WIDTH = 4_000, 0.08  # contracts at the money; log-moneyness of one bell width
_OI_SALT = 9_101
TRADING_DAYS = 252


def _session_date(inst: Instrument, now: datetime) -> int:
    """The date (days since 1970) of the last session opened by `now`: the key for daily data."""
    table = sessions(inst.venue, False)
    i = max(int(np.searchsorted(table.opens, now.timestamp(), side="right")) - 1, 0)
    return int(table.dates[i].astype(np.int64))


def _option_oi(inst: Instrument, day: int) -> int:
    under = underlying_of(inst)
    bell = np.exp(-0.5 * (np.log(inst.strike / under.price) / OI_WIDTH) ** 2)
    u = float(uniform(inst.con_id, np.array([day]), _OI_SALT)[0])
    return int(OI_PEAK * bell * (0.5 + u))


def _minutes_so_far(inst: Instrument, now: datetime) -> int:
    table = sessions(inst.venue, False)
    t = now.timestamp()
    i = int(np.searchsorted(table.opens, t, side="right")) - 1
    if i < 0:
        return 0
    return int(max(min(t, table.closes[i]) - table.opens[i], 0) // 60)


def _by_right(options: list[Instrument], each) -> tuple[int, int]:
    calls = sum(each(o) for o in options if o.right == "C")
    return calls, sum(each(o) for o in options if o.right == "P")


@lru_cache(maxsize=64)
def _chain_of(under_con_id: int, day: str) -> tuple[Instrument, ...]:
    options = chain(datetime.strptime(day, "%Y%m%d"))
    return tuple(o for o in options if o.under_con_id == under_con_id)


def _options(inst: Instrument, now: datetime) -> list[Instrument]:
    """The option itself, or the options listed on an underlying."""
    if inst.sec_type in OPTION_TYPES:
        return [inst]
    return list(_chain_of(inst.con_id, f"{now:%Y%m%d}"))


def open_interest(inst: Instrument, now: datetime) -> tuple[int, int]:
    """Call and put open interest: of the option itself, or summed over an underlying's chain
    (a future's is its options' plus the future's own, hashed like theirs)."""
    day = _session_date(inst, now)
    calls, puts = _by_right(_options(inst, now), lambda o: _option_oi(o, day))
    if inst.sec_type == "FUT":
        calls += int(OI_PEAK * 500 * (0.5 + float(uniform(inst.con_id, np.array([day]), 1)[0])))
    return calls, puts


def option_volume(inst: Instrument, now: datetime) -> tuple[int, int]:
    """Call and put volume so far today (expected volumes, see the module's docstring)."""
    return _by_right(_options(inst, now), lambda o: o.volume_per_minute * _minutes_so_far(o, now))


def implied_vol_30d(inst: Instrument) -> float:
    """The surface's 30-day at-the-money implied volatility."""
    return float(surface(inst).atm(np.array(IV_DAYS / 365)))


def historical_vol(inst: Instrument, now: datetime) -> float:
    """The annualised volatility of the last 30 daily log returns up to `now`."""
    end = int(now.timestamp())
    start = window_start_by_sessions(inst, False, end, HV_RETURNS + 1)
    return float(realised(bars_between(inst, "TRADES", False, "day", start, end).values.close)[-1])


def realised(closes: np.ndarray) -> np.ndarray:
    """For each close from the 31st on, the annualised standard deviation of the 30 log returns
    ending there (nan before: not enough history)."""
    returns = np.diff(np.log(np.asarray(closes, dtype=np.float64)))
    out = np.full(len(closes), np.nan)
    if len(returns) < HV_RETURNS:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(returns, HV_RETURNS)
    out[HV_RETURNS:] = windows.std(axis=1, ddof=1) * np.sqrt(TRADING_DAYS)
    return out


def volatility_bars(
    inst: Instrument, what: str, use_rth: bool, bar: int | str, start: int, end: int
) -> Bars:
    """OPTION_IMPLIED_VOLATILITY or HISTORICAL_VOLATILITY bars of size `bar` in [start, end),
    in units of 10**-VOL_DECIMALS, on the instants of the TRADES bars."""
    bars = bars_between(inst, "TRADES", use_rth, bar, start, end)
    v = bars.values
    if what == "OPTION_IMPLIED_VOLATILITY":
        level = np.full(len(v), implied_vol_30d(inst))
    else:
        level = _historical(inst, bars)
    units = np.rint(np.nan_to_num(level) * 10**VOL_DECIMALS).astype(np.int64)
    none = np.zeros(len(v), dtype=np.int64)
    values = Atoms(v.start, units, units, units, units, none, none, none.astype(np.float64))
    return Bars(values, bars.session_dates, bars.intraday, bars.start, bars.end)


def _historical(inst: Instrument, bars: Bars) -> np.ndarray:
    """Each bar's historical volatility: the previous 30 sessions' closes, then its close."""
    if not len(bars.values):
        return np.zeros(0)
    first = window_start_by_sessions(inst, False, int(bars.values.start[0]), HV_RETURNS)
    daily = bars_between(inst, "TRADES", False, "day", first, bars.end)
    index = np.searchsorted(daily.session_dates, bars.session_dates)  # the bar's own session
    behind = index[:, None] + np.arange(-HV_RETURNS, 0)[None, :]
    closes = daily.values.close.astype(np.float64)
    known = np.where(behind >= 0, closes[np.maximum(behind, 0)], np.nan)
    window = np.concatenate([known, bars.values.close[:, None].astype(np.float64)], axis=1)
    returns = np.diff(np.log(window), axis=1)
    with np.errstate(invalid="ignore"):
        return np.nanstd(returns, axis=1, ddof=1) * np.sqrt(TRADING_DAYS)
