"""The sessions a contract is expected to trade: what the coverage ledger counts as a gap.

Owns the map from IB exchanges to venues, and each venue's sessions. A venue's hours are IB's
facts (`ibfacts.venues`); regular hours come from exchange-calendars for its calendar (holidays
and early closes included), clipped to the venue's local window; full hours (useRTH=0) are the
venue's local template around each calendar session. Where there is no calendar, as for IB's FX
(IDEALPRO), the week is IB's own, Monday to Friday. A session's date is the day it closes. May
import the standard library, `ibfacts` and exchange-calendars.
"""

from __future__ import annotations

import bisect
import warnings
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from ibfacts.venues import (
    CME,
    FUNDSERV,
    IDEALPRO,
    NYMEX,
    PAXOS,
    US_BONDS,
    US_INDICES,
    US_STOCKS,
    Venue,
)
from ibkr.exceptions import InvalidRequest
from ibkr.planner import Session

FIRST_DAY = date(1980, 1, 2)  # exchange-calendars builds these quickly; IB's daily bars start ~1980
LAST_DAY = date(2030, 12, 31)


_STOCK_EXCHANGES = ("NYSE", "NASDAQ", "ISLAND", "ARCA", "AMEX", "BATS", "IEX", "NYSENAT", "PINK")
_INDEX_EXCHANGES = ("CBOE", "NASDAQ", "NYSE", "CBOT", "CME", "ARCA")
_FUTURE_EXCHANGES = {"CME": CME, "GLOBEX": CME, "CBOT": CME, "ECBOT": CME, "NYMEX": NYMEX}
_FUTURE_EXCHANGES |= {"COMEX": NYMEX}
_OTHER_VENUES = {("BOND", "SMART"): US_BONDS, ("FUND", "FUNDSERV"): FUNDSERV}
_OTHER_VENUES |= {("CRYPTO", "PAXOS"): PAXOS}
# US equity and index options trade the stock market's regular session only (no extended hours)
_OPTION_EXCHANGES = ("SMART", "CBOE", "CBOE2", "AMEX", "ISE", "PHLX", "BOX", "MIAX", "NASDAQOM")


def hours_for(sec_type: str, exchange: str, primary_exchange: str = "") -> Venue:
    """The trading hours of a contract, from its security type and (primary) exchange."""
    where = (primary_exchange if exchange == "SMART" and primary_exchange else exchange).upper()
    if sec_type == "CASH" and where in ("IDEALPRO", "IDEAL"):
        return IDEALPRO
    if sec_type in ("STK", "ETF") and where in _STOCK_EXCHANGES:
        return US_STOCKS
    if sec_type == "IND" and where in _INDEX_EXCHANGES:
        return US_INDICES
    if sec_type == "OPT" and where in _OPTION_EXCHANGES:
        return US_INDICES
    if sec_type == "CFD" and where in ("SMART", "IBCFD"):  # IB's CFDs on US stocks
        return US_STOCKS
    if (sec_type, where) in _OTHER_VENUES:
        return _OTHER_VENUES[sec_type, where]
    if sec_type in ("FUT", "CONTFUT", "FOP") and where in _FUTURE_EXCHANGES:
        return _FUTURE_EXCHANGES[where]
    raise InvalidRequest(
        f"no trading calendar is known for {sec_type} on {where or 'no exchange'}",
        "add its exchange to ibkr/sessions.py, or leave the contract out of the backfill",
    )


def expected_sessions(hours: Venue, use_rth: bool, first: date, last: date) -> list[Session]:
    """The sessions dated `first` to `last` (inclusive), open and close in UTC, oldest first."""
    table = _table(hours, use_rth)
    lo = bisect.bisect_left(table, (first,))
    hi = bisect.bisect_right(table, (last, _END, _END))
    return table[lo:hi]


_END = datetime.max.replace(tzinfo=UTC)


@cache
def _table(hours: Venue, use_rth: bool) -> list[Session]:
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


def _calendar_sessions(hours: Venue) -> list[tuple[date, datetime, datetime]]:
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


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tz).astimezone(UTC)
