"""Option chains anchored to the clock's date: SPY and AAPL (weeklies and monthlies), SPX index
options (trading class SPX for the monthlies, SPXW for the weeklies: CBOE's two classes) and
options on the quarterly E-mini S&P 500 futures (trading class ES on CME, expiring with their
future).

Identities: an equity or index option's local symbol is its OCC symbol (root padded to six,
yymmdd, C/P, strike times 1000 in eight digits), an ES option's is IB's `ESZ4 C5600` form; the
conIds are stable hashes of those symbols (IB's own conIds are not public).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache

from ibsim.market.instruments import (
    FUTURE_ORDER_TYPES,
    INDICES,
    STOCK_ORDER_TYPES,
    STOCKS,
    Instrument,
    futures,
    third_friday,
    utc,
)

OPTION_UNDERLYINGS = ("SPY", "AAPL")
OPTION_EXCHANGES = ("SMART", "CBOE", "AMEX", "ISE", "PHLX", "BOX", "MIAX", "NASDAQOM")
INDEX_OPTION_EXCHANGES = ("SMART", "CBOE")  # SPX options list on CBOE only
FOP_EXCHANGES = ("CME",)
OPTION_TYPES = ("OPT", "FOP")
ES_OPTION_RULE = 62  # ES's own 0.25 increments (CME's 0.05 below 5.00 is not modelled)


@dataclass(frozen=True)
class OptionClass:
    """One trading class of options on one underlying: what reqSecDefOptParams lists."""

    underlying: Instrument
    trading_class: str
    sec_type: str
    exchanges: tuple[str, ...]
    multiplier: str
    expiries: tuple[str, ...]  # yyyymmdd
    strikes: tuple[float, ...]


def _weeklies_and_monthlies(today: date) -> tuple[set[date], set[date]]:
    """Fridays for eight weeks, and the monthlies (third Fridays) for a year."""
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    weeklies = {friday + timedelta(weeks=i) for i in range(8)}
    monthlies = set()
    y, m = today.year, today.month
    for _ in range(13):
        third = third_friday(y, m)
        if third >= today:
            monthlies.add(third)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return weeklies, monthlies


def _yyyymmdd(days: set[date]) -> tuple[str, ...]:
    return tuple(f"{d:%Y%m%d}" for d in sorted(days))


def _strikes(price: float, step: float) -> tuple[float, ...]:
    """Strikes from 70% to 130% of the typical price, on the listing step."""
    low = int(price * 0.7 / step)
    high = int(price * 1.3 / step) + 1
    return tuple(round(k * step, 2) for k in range(low, high))


def option_classes(now: datetime) -> list[OptionClass]:
    """Every class listed on `now`'s date."""
    weeklies, monthlies = _weeklies_and_monthlies(now.date())
    classes = [
        OptionClass(
            u,
            u.symbol,
            "OPT",
            OPTION_EXCHANGES,
            "100",
            _yyyymmdd(weeklies | monthlies),
            _strikes(u.price, 1.0 if u.price < 300 else 5.0),
        )
        for u in STOCKS
        if u.symbol in OPTION_UNDERLYINGS
    ]
    spx = next(i for i in INDICES if i.symbol == "SPX")
    spx_strikes = _strikes(spx.price, 25.0)
    classes += [
        OptionClass(spx, "SPX", "OPT", INDEX_OPTION_EXCHANGES, "100", _yyyymmdd(monthlies),
                    spx_strikes),
        OptionClass(spx, "SPXW", "OPT", INDEX_OPTION_EXCHANGES, "100",
                    _yyyymmdd(weeklies - monthlies), spx_strikes),
    ]  # fmt: skip
    horizon = f"{now + timedelta(days=366):%Y%m%d}"
    classes += [
        OptionClass(
            f,
            "ES",
            "FOP",
            FOP_EXCHANGES,
            f.multiplier,
            (f.last_trade_date,),
            _strikes(f.price, 25.0),
        )
        for f in futures()
        if f.symbol == "ES" and f"{now:%Y%m%d}" <= f.last_trade_date <= horizon
    ]
    return classes


def listed(cls: OptionClass, expiry: str, strike: float, right: str) -> Instrument:
    """One contract of class `cls`; its conId is a stable function of its terms."""
    right = right[0].upper()
    under = cls.underlying
    if cls.sec_type == "FOP":
        local = f"{under.local_symbol} {right}{strike:g}"
        con_id = 900_000_000 + zlib.crc32(local.encode()) % 90_000_000
    else:
        local = f"{cls.trading_class:<6}{expiry[2:]}{right}{round(strike * 1000):08d}"
        con_id = 600_000_000 + zlib.crc32(local.encode()) % 300_000_000
    future = cls.sec_type == "FOP"
    return Instrument(
        con_id=con_id,
        symbol=under.symbol,
        sec_type=cls.sec_type,
        exchange=cls.exchanges[0],
        primary_exchange="",
        currency=under.currency,
        local_symbol=local,
        trading_class=cls.trading_class,
        long_name=under.long_name,
        venue=under.venue if future else "us_index",
        price=max(under.price * 0.02, 0.05),
        decimals=2,
        tick_units=25 if future else 1,
        market_rule=ES_OPTION_RULE if future else 32,
        head=utc(2000, 1, 3),
        multiplier=cls.multiplier,
        last_trade_date=expiry,
        strike=strike,
        right=right,
        contract_month=under.contract_month if future else expiry[:6],
        valid_exchanges=",".join(cls.exchanges),
        order_types=FUTURE_ORDER_TYPES if future else STOCK_ORDER_TYPES,
        under_con_id=under.con_id,
        under_symbol=under.symbol,
        under_sec_type=under.sec_type,
        volatility=0.9,
        volume_per_minute=20,
    )


def chain(now: datetime) -> list[Instrument]:
    """Every option listed on `now`'s date."""
    return [
        listed(cls, expiry, strike, right)
        for cls in option_classes(now)
        for expiry in cls.expiries
        for strike in cls.strikes
        for right in "CP"
    ]


def underlying_of(inst: Instrument) -> Instrument:
    """The stock, index or future an option is written on."""
    return _underlyings()[inst.under_con_id]


@cache
def _underlyings() -> dict[int, Instrument]:
    return {i.con_id: i for i in STOCKS + INDICES + futures()}
