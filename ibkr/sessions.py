"""The sessions a contract is expected to trade: what the coverage ledger counts as a gap.

Owns the map from IB exchanges to trading hours. Regular hours come from exchange-calendars for
the contract's exchange (holidays and early closes included); full hours (useRTH=0) are IB's
published local template around each calendar session (US stocks 04:00-20:00 New York, CME
Globex 17:00-16:00 Chicago). Where no calendar maps, as for IB's FX (IDEALPRO), the week is IB's
own: 17:15 New York the evening before to 17:00, Monday to Friday. A session's date is the day it
closes. May import the standard library and exchange-calendars.
"""

from __future__ import annotations

import bisect
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from ibkr.exceptions import InvalidRequest
from ibkr.planner import Session

FIRST_DAY = date(1980, 1, 2)  # exchange-calendars builds these quickly; IB's daily bars start ~1980
LAST_DAY = date(2030, 12, 31)


@dataclass(frozen=True)
class Hours:
    """When one family of exchanges trades, as a calendar plus local templates."""

    calendar: str | None  # exchange-calendars name; None: IB's Monday-to-Friday week
    tz: str
    rth: tuple[time, time] | None = None  # a local window inside the calendar session
    full_start: time | None = None  # full hours open at this local time ...
    full_days_before: int = 0  # ... this many days before the session date
    full_end: time | None = None  # ... and close here (clipped to an early close)
    full_after_close: timedelta = timedelta(0)  # or: the calendar's close plus this


US_STOCKS = Hours(
    "XNYS", "America/New_York", full_start=time(4), full_after_close=timedelta(hours=4)
)
US_INDICES = Hours("XNYS", "America/New_York")
CME = Hours("CMES", "America/Chicago", (time(8, 30), time(15)), time(17), 1, time(16))
NYMEX = Hours("CMES", "America/Chicago", (time(8), time(13, 30)), time(17), 1, time(16))
IDEALPRO = Hours(None, "America/New_York", None, time(17, 15), 1, time(17))

_STOCK_EXCHANGES = ("NYSE", "NASDAQ", "ISLAND", "ARCA", "AMEX", "BATS", "IEX", "NYSENAT", "PINK")
_INDEX_EXCHANGES = ("CBOE", "NASDAQ", "NYSE", "CBOT", "CME", "ARCA")
_FUTURE_EXCHANGES = {"CME": CME, "GLOBEX": CME, "CBOT": CME, "ECBOT": CME, "NYMEX": NYMEX}
_FUTURE_EXCHANGES |= {"COMEX": NYMEX}


def hours_for(sec_type: str, exchange: str, primary_exchange: str = "") -> Hours:
    """The trading hours of a contract, from its security type and (primary) exchange."""
    where = (primary_exchange if exchange == "SMART" and primary_exchange else exchange).upper()
    if sec_type == "CASH" and where in ("IDEALPRO", "IDEAL"):
        return IDEALPRO
    if sec_type in ("STK", "ETF") and where in _STOCK_EXCHANGES:
        return US_STOCKS
    if sec_type == "IND" and where in _INDEX_EXCHANGES:
        return US_INDICES
    if sec_type in ("FUT", "CONTFUT", "FOP") and where in _FUTURE_EXCHANGES:
        return _FUTURE_EXCHANGES[where]
    raise InvalidRequest(
        f"no trading calendar is known for {sec_type} on {where or 'no exchange'}",
        "add its exchange to ibkr/sessions.py, or leave the contract out of the backfill",
    )


def expected_sessions(hours: Hours, use_rth: bool, first: date, last: date) -> list[Session]:
    """The sessions dated `first` to `last` (inclusive), open and close in UTC, oldest first."""
    table = _table(hours, use_rth)
    lo = bisect.bisect_left(table, (first,))
    hi = bisect.bisect_right(table, (last, _END, _END))
    return table[lo:hi]


_END = datetime.max.replace(tzinfo=UTC)


@cache
def _table(hours: Hours, use_rth: bool) -> list[Session]:
    tz = ZoneInfo(hours.tz)
    rows = []
    for day, opened, closed in _calendar_sessions(hours):
        if use_rth and hours.rth is not None:
            opened = max(opened, _local(day, hours.rth[0], tz))
            closed = min(closed, _local(day, hours.rth[1], tz))
        elif not use_rth:
            if hours.full_start is not None:
                opened = _local(day - timedelta(days=hours.full_days_before), hours.full_start, tz)
            if hours.full_end is not None:
                closed = min(closed, _local(day, hours.full_end, tz))
            closed += hours.full_after_close
        rows.append(Session(day, opened, closed))
    return rows


def _calendar_sessions(hours: Hours) -> list[tuple[date, datetime, datetime]]:
    """(date, open, close) of every session; IB's week where there is no calendar."""
    if hours.calendar is None:
        tz = ZoneInfo(hours.tz)
        assert hours.full_start is not None and hours.full_end is not None
        days = (FIRST_DAY + timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days + 1))
        return [
            (
                day,
                _local(day - timedelta(days=hours.full_days_before), hours.full_start, tz),
                _local(day, hours.full_end, tz),
            )
            for day in days
            if day.weekday() < 5
        ]
    import exchange_calendars as xcals  # slow to import: only when a calendar is needed

    with warnings.catch_warnings():
        # exchange-calendars 4.13 on pandas 3 warns that .values drops the zone: only noisy.
        warnings.filterwarnings("ignore", message=r".*\.values returning an ndarray")
        calendar = xcals.get_calendar(hours.calendar, start=str(FIRST_DAY), end=str(LAST_DAY))
        schedule = calendar.schedule
        return [
            # datetime.UTC, as everywhere else: comparing datetimes across two UTC zone objects
            # (pandas gives zoneinfo's) is many times slower
            (
                day.date(),
                opened.to_pydatetime().astimezone(UTC),
                closed.to_pydatetime().astimezone(UTC),
            )
            for day, opened, closed in zip(
                schedule.index, schedule["open"], schedule["close"], strict=True
            )
        ]


def _utc(stamp) -> datetime:  # a pandas Timestamp
    return stamp.to_pydatetime().astimezone(UTC)


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tz).astimezone(UTC)
