"""Trading sessions per venue, from exchange-calendars, as epoch-second arrays.

The venues and their hours are IB's facts (`ibfacts.venues`). Regular hours come from the
exchange calendar (holidays and early closes included), clipped to the venue's local window;
extended hours are its local template around each calendar session. A venue without a calendar
(IB's FX week) takes exchange-calendars' Monday-to-Friday "24/5" days, and its regular hours are
its full ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np

from ibfacts.venues import VENUES, Venue

CALENDAR_START = "2000-01-03"
CALENDAR_END = "2030-12-31"
WEEKDAYS_CALENDAR = "24/5"  # exchange-calendars' Monday to Friday, for venues without a calendar


@dataclass(frozen=True)
class Sessions:
    """Sessions in date order: session date (days since epoch), open and close (epoch seconds)."""

    dates: np.ndarray  # datetime64[D]
    opens: np.ndarray  # int64
    closes: np.ndarray  # int64

    def between(self, start: int, end: int) -> Sessions:
        """Sessions that overlap [start, end)."""
        lo = int(np.searchsorted(self.closes, start, side="right"))
        hi = int(np.searchsorted(self.opens, end, side="left"))
        return Sessions(self.dates[lo:hi], self.opens[lo:hi], self.closes[lo:hi])

    def __len__(self) -> int:
        return len(self.dates)


def _calendar(name: str):
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange-calendars 4.13 on pandas 3 warns that .values drops the zone: only noisy.
        warnings.filterwarnings("ignore", message=r".*\.values returning an ndarray")
        return xcals.get_calendar(name, start=CALENDAR_START, end=CALENDAR_END)


def _local(day: date, at: time, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, at, tz).timestamp())


@cache
def sessions(venue_name: str, rth: bool) -> Sessions:
    """Every session of the venue between CALENDAR_START and CALENDAR_END."""
    venue = VENUES[venue_name]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*\.values returning an ndarray")
        schedule = _calendar(venue.calendar or WEEKDAYS_CALENDAR).schedule
        days = [ts.date() for ts in schedule.index]
        cal_open = [int(ts.timestamp()) for ts in schedule["open"]]
        cal_close = [int(ts.timestamp()) for ts in schedule["close"]]
    tz = ZoneInfo(venue.tz)
    opens, closes = [], []
    for day, o, c in zip(days, cal_open, cal_close, strict=True):
        if rth and venue.calendar is not None:
            o2, c2 = o, c
            if venue.rth is not None:  # a daytime window inside a longer session
                o2 = max(o, _local(day, venue.rth[0], tz))
                c2 = min(c, _local(day, venue.rth[1], tz))
        else:
            o2, c2 = o, _full_end(venue, day, c)
            if venue.full_start is not None:
                before = timedelta(days=venue.full_days_before)
                o2 = _local(day - before, venue.full_start, tz)
        opens.append(o2)
        closes.append(c2)
    return Sessions(
        np.array(days, dtype="datetime64[D]"),
        np.array(opens, dtype=np.int64),
        np.array(closes, dtype=np.int64),
    )


def _full_end(venue: Venue, day: date, calendar_close: int) -> int:
    if venue.full_end is not None:
        return min(calendar_close, _local(day, venue.full_end, ZoneInfo(venue.tz)))
    return calendar_close + int(venue.full_after_close.total_seconds())


def utc_offset(venue_name: str, epoch: int) -> int:
    """Seconds to add to UTC epoch to get local wall-clock epoch at that instant."""
    tz = ZoneInfo(VENUES[venue_name].tz)
    offset = datetime.fromtimestamp(epoch, UTC).astimezone(tz).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def trading_hours(venue_name: str, rth: bool, around: datetime, days: int = 7) -> str:
    """IB's tradingHours/liquidHours string for the days after `around`, in local time."""
    venue = VENUES[venue_name]
    tz = ZoneInfo(venue.tz)
    table = sessions(venue_name, rth)
    start_day = around.astimezone(tz).date()
    parts = []
    opens_on = {datetime.fromtimestamp(int(o), tz).date() for o in table.opens[-4000:]}
    for offset in range(days):
        day = start_day + timedelta(days=offset)
        idx = int(np.searchsorted(table.dates, np.datetime64(day, "D")))
        if idx < len(table) and table.dates[idx] == np.datetime64(day, "D"):
            o = datetime.fromtimestamp(int(table.opens[idx]), tz)
            c = datetime.fromtimestamp(int(table.closes[idx]), tz)
            parts.append(f"{o:%Y%m%d:%H%M}-{c:%Y%m%d:%H%M}")
        elif day not in opens_on:  # a Sunday evening open is listed with Monday's session
            parts.append(f"{day:%Y%m%d}:CLOSED")
    return ";".join(parts)


def warm_up() -> None:
    """Compute every venue's session table once (exchange-calendars is slow the first time)."""
    for name in VENUES:
        for rth in (False, True):
            sessions(name, rth)
