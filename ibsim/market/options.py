"""Option chains for SPY and AAPL: weeklies and monthlies anchored to the clock's date."""

from __future__ import annotations

import zlib
from datetime import date, datetime, timedelta

from ibsim.market.instruments import STOCK_ORDER_TYPES, Instrument, third_friday, utc

OPTION_UNDERLYINGS = ("SPY", "AAPL")
OPTION_EXCHANGES = ("SMART", "CBOE", "AMEX", "ISE", "PHLX", "BOX", "MIAX", "NASDAQOM")


def _option_expiries(now: datetime) -> list[date]:
    """Weeklies for eight weeks, then the monthlies (third Fridays) for a year."""
    today = now.date()
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    weeklies = {friday + timedelta(weeks=i) for i in range(8)}
    monthlies = set()
    y, m = today.year, today.month
    for _ in range(13):
        third = third_friday(y, m)
        if third >= today:
            monthlies.add(third)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return sorted(weeklies | monthlies)


def _strike_step(price: float) -> float:
    return 1.0 if price < 300 else 5.0


def option_strikes(underlying: Instrument) -> list[float]:
    """Strikes from 70% to 130% of the typical price, on the listing step."""
    step = _strike_step(underlying.price)
    low = int(underlying.price * 0.7 / step)
    high = int(underlying.price * 1.3 / step) + 1
    return [round(k * step, 2) for k in range(low, high)]


def option_expiries(now: datetime) -> list[str]:
    return [f"{d:%Y%m%d}" for d in _option_expiries(now)]


def option(underlying: Instrument, expiry: str, strike: float, right: str) -> Instrument:
    """One option contract; its conId is a stable function of its terms."""
    right = right[0].upper()
    occ = f"{underlying.symbol:<6}{expiry[2:]}{right}{round(strike * 1000):08d}"
    con_id = 600_000_000 + zlib.crc32(occ.encode()) % 300_000_000
    return Instrument(
        con_id=con_id,
        symbol=underlying.symbol,
        sec_type="OPT",
        exchange="SMART",
        primary_exchange="",
        currency="USD",
        local_symbol=occ,
        trading_class=underlying.symbol,
        long_name=underlying.long_name,
        venue="us_index",
        price=max(underlying.price * 0.02, 0.05),
        decimals=2,
        tick_units=1,
        market_rule=32,
        head=utc(2000, 1, 3),
        multiplier="100",
        last_trade_date=expiry,
        strike=strike,
        right=right,
        contract_month=expiry[:6],
        valid_exchanges=",".join(OPTION_EXCHANGES),
        order_types=STOCK_ORDER_TYPES,
        under_con_id=underlying.con_id,
        under_symbol=underlying.symbol,
        under_sec_type="STK",
        volatility=0.9,
        volume_per_minute=20,
    )
