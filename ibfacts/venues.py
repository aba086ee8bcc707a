"""When each venue trades, as data: an exchange calendar for holidays and early closes, IB's
local regular-hours window inside it, and IB's full (useRTH=0) hours around it.

Sources: the contract details IB sends (tradingHours and liquidHours, in the venue's timeZoneId;
IB's TWS API documentation, "Contract Details",
https://interactivebrokers.github.io/tws-api/contract_details.html), the exchanges' published
hours (NYSE/Nasdaq 09:30-16:00 New York, with IB's extended hours 04:00-20:00; CME Globex
17:00-16:00 Chicago, a one-hour daily break; NYMEX regular hours 08:00-13:30 Chicago), and IB's
forex hours on IDEALPRO (Sunday 17:15 to Friday 17:00 New York), crypto on PAXOS around the
clock every day of the year (IB's "Cryptocurrency" trading pages: 24/7), US Treasuries on IB's
SMART bond routing 08:00-17:00 New York on the stock market's days (an approximation: the bond
market's own SIFMA holidays differ on a few days a year), and mutual fund orders through
FUNDSERV in the stock market's regular hours (a fund prices once a day, at its NAV after the
close). A session's date is the day it closes. Calendar names are exchange-calendars' (XNYS,
CMES, 24/7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from types import MappingProxyType


@dataclass(frozen=True)
class Venue:
    """When one family of exchanges trades, as a calendar plus local templates."""

    name: str
    calendar: str | None  # exchange-calendars name; None: IB's own Monday-to-Friday week
    tz: str  # IANA zone of the local templates
    ib_tz: str  # IB's timeZoneId spelling of that zone
    rth: tuple[time, time] | None = None  # regular hours, a local window inside the session
    full_start: time | None = None  # full hours open at this local time ...
    full_days_before: int = 0  # ... this many days before the session date
    full_end: time | None = None  # ... and close here (clipped to an early close)
    full_after_close: timedelta = timedelta(0)  # or: the calendar's close plus this


US_STOCKS = Venue(
    "us_equity",
    "XNYS",
    "America/New_York",
    "US/Eastern",
    full_start=time(4),
    full_after_close=timedelta(hours=4),
)
US_INDICES = Venue("us_index", "XNYS", "America/New_York", "US/Eastern")
CME = Venue(
    "cme_globex",
    "CMES",
    "America/Chicago",
    "US/Central",
    rth=(time(8, 30), time(15)),
    full_start=time(17),
    full_days_before=1,
    full_end=time(16),  # the daily maintenance break, 16:00-17:00 Chicago
)
NYMEX = Venue(
    "nymex_globex",
    "CMES",
    "America/Chicago",
    "US/Central",
    rth=(time(8), time(13, 30)),
    full_start=time(17),
    full_days_before=1,
    full_end=time(16),
)
IDEALPRO = Venue(
    "fx_idealpro",
    None,
    "America/New_York",
    "US/Eastern",
    full_start=time(17, 15),
    full_days_before=1,
    full_end=time(17),
)  # forex has no regular hours apart from its full ones

PAXOS = Venue("crypto_paxos", "24/7", "UTC", "UTC")  # one session per UTC day, every day
US_BONDS = Venue(
    "us_bond",
    "XNYS",
    "America/New_York",
    "US/Eastern",
    full_start=time(8),
    full_after_close=timedelta(hours=1),
)
FUNDSERV = Venue("fundserv", "XNYS", "America/New_York", "US/Eastern")

VENUES: Mapping[str, Venue] = MappingProxyType({
    v.name: v for v in (US_STOCKS, US_INDICES, CME, NYMEX, IDEALPRO, PAXOS, US_BONDS, FUNDSERV)
})  # fmt: skip
