"""When an order may work, pure: the session it works in (regular or extended hours, and which
order types IB lets work outside regular hours), DAY and GTD expiry, the close a MOC or LOC order
executes at, a VWAP or TWAP order's window and how much of it is due, and IB's order times
(goodTillDate, an algo's startTime and endTime, a time condition).

Times are epoch seconds; sessions are `ibsim.market.calendars`. A time IB would refuse raises
`ibsim.orders.matching.Refused`. Imports only ibsim.
"""

from __future__ import annotations

import math
from datetime import datetime
from datetime import time as time_of_day
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from ibsim.accounts.book import Order
from ibsim.market import rules
from ibsim.market.calendars import sessions
from ibsim.market.errors import IBError
from ibsim.market.instruments import Instrument
from ibsim.orders.matching import Refused, rejected

# Types IB lets work outside regular hours (outsideRth); the others wait for the open.
OUTSIDE_RTH = frozenset({"LMT", "STP LMT", "LIT", "TRAIL LIMIT", "REL"})


def rth_only(order: Order) -> bool:
    """Whether the order waits for regular hours: without outsideRth, or of a type IB does not
    let work outside them (MKT, stops, algos)."""
    return not (order.outside_rth and order.order_type in OUTSIDE_RTH and not order.algo_strategy)


def market_hours(inst: Instrument, at: int, rth: bool) -> tuple[int, int]:
    """(open, close) in epoch seconds of the session that contains `at`, or else the next one:
    regular hours (`rth`) or the full extended hours."""
    table = sessions(inst.venue, rth)
    i = int(np.searchsorted(table.closes, at, side="right"))
    if i >= len(table):
        return 2**62, 2**62
    return int(table.opens[i]), int(table.closes[i])


def expiry(tif: str, good_till_date: str, inst: Instrument, now: int, rth: bool) -> int | None:
    """When an order is cancelled by its time in force: a DAY order at the close of the session
    it works in (regular or extended hours), a GTD order at its goodTillDate; else never."""
    if tif == "DAY":
        return market_hours(inst, now, rth)[1]
    if tif == "GTD":
        until = clock_time(good_till_date, now)
        if until is None or until <= now:
            raise Refused(rejected(f"The goodTillDate {good_till_date!r} is not in the future."))
        return until
    return None


def auction_close(inst: Instrument, now: int) -> int:
    """The regular-hours close a MOC or LOC order placed at `now` executes at."""
    return market_hours(inst, now, True)[1]


def algo_window(
    algo: str, params: dict[str, str], inst: Instrument, now: int, span: float
) -> tuple[tuple[int, int] | None, bool]:
    """A VWAP or TWAP order's (start, end) and allowPastEndTime: its startTime and endTime
    params, or else from now (or the open) for `span` seconds, within the session."""
    if algo not in ("Vwap", "Twap"):
        return None, False
    opens, closes = market_hours(inst, now, True)
    start = clock_time(params.get("startTime", ""), now) or max(now, opens)
    end = clock_time(params.get("endTime", ""), now) or min(start + int(span), closes)
    if end <= start:
        raise Refused(rejected(f"The {algo} order's endTime must come after its startTime."))
    return (start, end), params.get("allowPastEndTime", "0").strip() in ("1", "true", "True")


def due(total: float, start: int, end: int, now: int) -> float:
    """How much of a VWAP or TWAP order should be filled by `now`: a straight line from none at
    `start` to all at `end`, in whole units when the order is in whole units."""
    if now >= end:
        return total
    if now <= start:
        return 0.0
    share = total * (now - start) / (end - start)
    return float(math.floor(share)) if float(total).is_integer() else round(share, 4)


def clock_time(text: str, now: int, zone: str = "US/Eastern") -> int | None:
    """Epoch seconds of an IB time: `hh:mm:ss [zone]` (today in that zone, New York when none),
    `yyyymmdd hh:mm:ss [zone]` or `yyyymmdd-hh:mm:ss` (UTC); None for an empty text."""
    text = text.strip()
    if not text:
        return None
    try:
        if text[:8].isdigit():
            when = rules.parse_end(text, zone).when
            return None if when is None else int(when.timestamp())
        clock, _, zone_name = text.partition(" ")
        tz = ZoneInfo(zone_name.strip() or zone)
        hh, mm, ss = (int(x) for x in clock.split(":"))
        day = datetime.fromtimestamp(now, tz).date()
        return int(datetime.combine(day, time_of_day(hh, mm, ss), tz).timestamp())
    except (ValueError, IBError, ZoneInfoNotFoundError, OSError):
        raise Refused(rejected(
            f"The time {text!r} is neither hh:mm:ss zone nor yyyymmdd hh:mm:ss zone."
        )) from None  # fmt: skip
