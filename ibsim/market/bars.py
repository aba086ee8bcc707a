"""From a time window to bars: session clipping, atoms, and grouping into bar buckets.

Intraday buckets sit on the local clock grid (an hour bar covers 10:00-11:00 local) and are
clipped to the session, so the first RTH hour bar starts 09:30. Day bars are sessions; week and
month bars group sessions by calendar week and month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ibsim.market.atoms import minute_atoms, second_atoms
from ibsim.market.calendars import Sessions, sessions, utc_offset
from ibsim.market.instruments import Instrument
from ibsim.market.prices import Atoms, aggregate


@dataclass
class Bars:
    values: Atoms
    session_dates: np.ndarray  # datetime64[D] of each bar's first session
    intraday: bool
    start: int  # the window asked for, [start, end) in epoch seconds
    end: int


def _minute_grid(a: int, b: int) -> tuple[int, int]:
    return -(-a // 60) * 60, b // 60 * 60


def atoms_between(
    inst: Instrument, what: str, windows: Sessions, start: int, end: int, resolution: int
) -> tuple[Atoms, np.ndarray]:
    """Atoms of `resolution` seconds (1 or 60) in [start, end), with each atom's session index."""
    parts: list[Atoms] = []
    owners: list[np.ndarray] = []
    for i in range(len(windows)):
        a = max(int(windows.opens[i]), start)
        b = min(int(windows.closes[i]), end)
        if a >= b:
            continue
        if resolution == 1:
            minutes = np.arange(a // 60 * 60, -(-b // 60) * 60, 60, dtype=np.int64)
            secs = second_atoms(inst, minute_atoms(inst, minutes, what), what)
            keep = (secs.start >= a) & (secs.start < b)
            parts.append(secs.take(keep))
        else:
            first, last = _minute_grid(a, b)
            minutes = np.arange(first, last, 60, dtype=np.int64)
            chunk = minute_atoms(inst, minutes, what)
            if b % 60 and last >= first:  # the minute that `end` cuts: only its seconds before b
                cut = second_atoms(inst, minute_atoms(inst, np.array([last]), what), what)
                cut = cut.take(cut.start < b)
                chunk = Atoms.concat([chunk, aggregate(cut, np.array([0]))])
            parts.append(chunk)
        owners.append(np.full(len(parts[-1]), i, dtype=np.int64))
    if not parts:
        empty = minute_atoms(inst, np.array([], dtype=np.int64), what)
        return empty, np.array([], dtype=np.int64)
    return Atoms.concat(parts), np.concatenate(owners)


def bars_between(
    inst: Instrument, what: str, use_rth: bool, bar: int | str, start: int, end: int
) -> Bars:
    """The bars of size `bar` holding the data in [start, end)."""
    table = sessions(inst.venue, use_rth).between(start, end)
    resolution = 1 if isinstance(bar, int) and bar < 60 else 60
    atoms, owner = atoms_between(inst, what, table, start, end, resolution)
    if not len(atoms):
        return Bars(atoms, np.array([], dtype="datetime64[D]"), isinstance(bar, int), start, end)
    if isinstance(bar, int):
        offsets = np.array([utc_offset(inst.venue, int(o)) for o in table.opens], dtype=np.int64)
        key = owner * 10_000_000 + (atoms.start + offsets[owner]) // bar
    elif bar == "day":
        key = owner
    else:
        days = table.dates[owner].astype(np.int64)
        key = (days + 3) // 7 if bar == "week" else table.dates[owner].astype("datetime64[M]")
        key = np.asarray(key).astype(np.int64)
    group_starts = np.flatnonzero(np.diff(key, prepend=key[0] - 1))
    dates = table.dates[owner[group_starts]]
    return Bars(aggregate(atoms, group_starts), dates, isinstance(bar, int), start, end)


def window_start_by_sessions(inst: Instrument, use_rth: bool, end: int, count: int) -> int:
    """The open of the `count`-th session back from `end` (IB's `N D`)."""
    table = sessions(inst.venue, use_rth)
    last = int(np.searchsorted(table.opens, end, side="left")) - 1
    first = max(last - count + 1, 0)
    return int(table.opens[first]) if last >= 0 else end


def window_start_by_trading_seconds(inst: Instrument, use_rth: bool, end: int, count: int) -> int:
    """The instant `count` trading seconds before `end` (IB's `N S`)."""
    table = sessions(inst.venue, use_rth)
    i = int(np.searchsorted(table.opens, end, side="left")) - 1
    remaining = count
    while i >= 0:
        close = min(int(table.closes[i]), end)
        span = close - int(table.opens[i])
        if span >= remaining:
            return close - remaining
        remaining -= max(span, 0)
        i -= 1
    return int(table.opens[0])


def session_close_on(inst: Instrument, day: np.datetime64) -> int | None:
    """The close of the (full-hours) session on `day`, if there is one."""
    table = sessions(inst.venue, False)
    i = int(np.searchsorted(table.dates, day))
    if i < len(table) and table.dates[i] == day:
        return int(table.closes[i])
    return None
