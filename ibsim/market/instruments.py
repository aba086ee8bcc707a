"""Reference data: the instruments the gateway knows, with IB's conIds and field formats.

Stocks, ETFs, indices, FX, CFDs, a mutual fund, crypto and US Treasuries are fixed rows;
futures ladders are generated from a few parameters, and "live" or "expired" follows the
gateway's clock. Options: ibsim.market.options. A bond's terms and price maths:
ibsim.market.bonds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import cache

from ibsim.market.bonds import BondTerms, cusip_check_digit, description, isin_of

STOCK_ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,"
    "FOK,GAT,GTC,GTD,GTT,HID,IBKRATS,ICE,IMB,IOC,LIT,LMT,LOC,MIDPX,MIT,MKT,MOC,MTL,NGCOMB,"
    "NONALGO,OCA,PEGBENCH,PEGMID,PEGSTK,POSTATS,POSTONLY,REL,RTH,SCALE,SNAPMID,SNAPMKT,STP,"
    "STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,VWAP,WHATIF"
)
FUTURE_ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,DAY,GTC,GTD,IOC,LIT,LMT,MIT,MKT,STP,STPLMT,TRAIL,WHATIF"
)
FX_ORDER_TYPES = (
    "ACTIVETIM,AD,ALERT,ALGO,ALLOC,AVGCOST,DAY,GTC,GTD,IOC,LMT,MKT,STP,STPLMT,TRAIL,WHATIF"
)
BOND_ORDER_TYPES = "ALERT,ALLOC,DAY,GTC,GTD,IOC,LMT,MKT,WHATIF"
FUND_ORDER_TYPES = "ALLOC,DAY,MKT,WHATIF"  # a fund order is for the next NAV
CRYPTO_ORDER_TYPES = "ALLOC,GTC,IOC,LMT,MINUTES,MKT,STP,STPLMT,WHATIF"

# marketRuleId -> [(lowEdge, increment)], served by reqMarketRule.
MARKET_RULES: dict[int, tuple[tuple[float, float], ...]] = {
    26: ((0.0, 0.01),),
    32: ((0.0, 0.01), (3.0, 0.05)),  # US equity options
    62: ((0.0, 0.25),),  # ES, NQ
    110: ((0.0, 0.01),),  # CL
    239: ((0.0, 0.00005),),  # IDEALPRO majors
    240: ((0.0, 0.005),),  # IDEALPRO JPY crosses
    1: ((0.0, 0.01),),  # indices
    # plausible ids for the rules below: IB's own ids for these are not public
    3001: ((0.0, 0.005),),  # US Treasuries, percent of par
    3002: ((0.0, 0.25),),  # BTC on PAXOS
    3003: ((0.0, 0.05),),  # ETH on PAXOS
}


@dataclass(frozen=True)
class Instrument:
    con_id: int
    symbol: str
    sec_type: str  # STK, IND, CASH, FUT, CONTFUT, OPT
    exchange: str  # the exchange a request names (SMART for routed products)
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    long_name: str
    venue: str  # ibfacts.venues.VENUES key
    price: float  # typical price level
    decimals: int  # digits of a price
    tick_units: int  # minimum tick in units of 10**-decimals
    market_rule: int
    head: datetime  # earliest TRADES bar IB has
    multiplier: str = ""
    last_trade_date: str = ""  # yyyymmdd
    strike: float = 0.0
    right: str = ""
    contract_month: str = ""
    valid_exchanges: str = ""
    order_types: str = STOCK_ORDER_TYPES
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = ""
    isin: str = ""
    under_con_id: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    volatility: float = 0.25  # annualised, drives the synthetic market
    volume_per_minute: int = 0  # 0: no traded volume (indices, FX)
    derivative_sec_types: tuple[str, ...] = ()
    market_con_id: int = 0  # whose market it shows (a CFD: its stock's); 0: its own
    daily_price: bool = False  # one price a day (a fund's NAV): quotes stand still all day
    face_value: int = 0  # a bond: the face value of one unit; its price is percent of par
    size_rules: tuple[str, str, str] = ()  # minSize, sizeIncrement, suggestedSizeIncrement
    bond: BondTerms | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def min_tick(self) -> float:
        return self.tick_units / 10**self.decimals

    @property
    def market_id(self) -> int:
        """The key of its synthetic market: a CFD quotes what its stock quotes."""
        return self.market_con_id or self.con_id

    @property
    def value_multiplier(self) -> float:
        """Money per unit of quantity per unit of price: a bond's price is percent of its
        face value; a future's or option's, the multiplier's; a share's, one."""
        if self.face_value:
            return self.face_value / 100
        return float(self.multiplier) if self.multiplier else 1.0

    def expired(self, now: datetime) -> bool:
        if not self.last_trade_date:
            return False
        return datetime.strptime(self.last_trade_date, "%Y%m%d").date() < now.date()

    def expiry(self) -> date | None:
        if not self.last_trade_date:
            return None
        return datetime.strptime(self.last_trade_date, "%Y%m%d").date()


def utc(y: int, m: int, d: int, hh: int = 14, mm: int = 30) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def _stock(con_id, symbol, name, primary, price, vol, head, industry, category, isin, etf=False):
    return Instrument(
        con_id=con_id,
        symbol=symbol,
        sec_type="STK",
        exchange="SMART",
        primary_exchange=primary,
        currency="USD",
        local_symbol=symbol,
        trading_class="NMS" if primary == "NASDAQ" else symbol,
        long_name=name,
        venue="us_equity",
        price=price,
        decimals=2,
        tick_units=1,
        market_rule=26,
        head=head,
        valid_exchanges="SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,"
        "EDGEA,BYX,IEX,EDGX,FOXRIVER,PEARL,NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,TPLUS0,PSX",
        industry=industry,
        category=category,
        subcategory=category,
        stock_type="ETF" if etf else "COMMON",
        isin=isin,
        volatility=vol,
        volume_per_minute=int(32_000_000 / price),  # about 60M shares a day at $215
        derivative_sec_types=("CFD", "OPT", "IOPT", "WAR", "BAG"),
    )


# conId, symbol, long name, primary exchange, price, volatility, first bar, industry, category,
# ISIN, is an ETF
# fmt: off
_STOCK_ROWS = (
    (265598, "AAPL", "APPLE INC", "NASDAQ", 215.0, 0.28, (2000, 1, 3), "Technology", "Computers", "US0378331005", False),
    (272093, "MSFT", "MICROSOFT CORP", "NASDAQ", 420.0, 0.25, (2000, 1, 3), "Technology", "Software", "US5949181045", False),
    (3691937, "AMZN", "AMAZON.COM INC", "NASDAQ", 190.0, 0.32, (2000, 1, 3), "Communications", "Internet", "US0231351067", False),
    (4815747, "NVDA", "NVIDIA CORP", "NASDAQ", 130.0, 0.45, (2000, 1, 3), "Technology", "Semiconductors", "US67066G1040", False),
    (76792991, "TSLA", "TESLA INC", "NASDAQ", 250.0, 0.55, (2010, 6, 29), "Consumer, Cyclical", "Auto Manufacturers", "US88160R1014", False),
    (208813719, "GOOGL", "ALPHABET INC-CL A", "NASDAQ", 170.0, 0.3, (2004, 8, 19), "Communications", "Internet", "US02079K3059", False),
    (107113386, "META", "META PLATFORMS INC-CLASS A", "NASDAQ", 550.0, 0.38, (2012, 5, 18), "Communications", "Internet", "US30303M1027", False),
    (8314, "IBM", "INTL BUSINESS MACHINES CORP", "NYSE", 220.0, 0.22, (2000, 1, 3), "Technology", "Computers", "US4592001014", False),
    (1520593, "JPM", "JPMORGAN CHASE & CO", "NYSE", 220.0, 0.24, (2000, 1, 3), "Financial", "Banks", "US46625H1005", False),
    (13977, "XOM", "EXXON MOBIL CORP", "NYSE", 115.0, 0.24, (2000, 1, 3), "Energy", "Oil&Gas", "US30231G1022", False),
    (756733, "SPY", "SPDR S&P 500 ETF TRUST", "ARCA", 560.0, 0.16, (2000, 1, 3), "Funds", "Equity Fund", "US78462F1030", True),
    (320227571, "QQQ", "INVESCO QQQ TRUST SERIES 1", "NASDAQ", 480.0, 0.2, (2000, 1, 3), "Funds", "Equity Fund", "US46090E1038", True),
    (9579970, "IWM", "ISHARES RUSSELL 2000 ETF", "ARCA", 220.0, 0.22, (2000, 5, 26), "Funds", "Equity Fund", "US4642876555", True),
    (73128548, "DIA", "SPDR DJ INDUSTRIAL AVERAGE", "ARCA", 420.0, 0.15, (2000, 1, 3), "Funds", "Equity Fund", "US78467X1090", True),
    (51529211, "GLD", "SPDR GOLD SHARES", "ARCA", 240.0, 0.15, (2004, 11, 18), "Funds", "Commodity Fund", "US78463V1070", True),
    (15547841, "TLT", "ISHARES 20+ YEAR TREASURY BD", "NASDAQ", 92.0, 0.14, (2002, 7, 26), "Funds", "Debt Fund", "US4642874329", True),
)
# fmt: on
STOCKS = tuple(
    _stock(c, s, n, p, px, v, utc(*d), ind, cat, isin, etf)
    for c, s, n, p, px, v, d, ind, cat, isin, etf in _STOCK_ROWS
)


def _index(con_id, symbol, name, exchange, price, vol):
    return Instrument(
        con_id=con_id,
        symbol=symbol,
        sec_type="IND",
        exchange=exchange,
        primary_exchange="",
        currency="USD",
        local_symbol=symbol,
        trading_class=symbol,
        long_name=name,
        venue="us_index",
        price=price,
        decimals=2,
        tick_units=1,
        market_rule=1,
        head=utc(2000, 1, 3),
        valid_exchanges=exchange,
        order_types="",
        volatility=vol,
        derivative_sec_types=("OPT", "FUT", "FOP"),
    )


def _cfd(con_id: int, stock: Instrument) -> Instrument:
    """IB's CFD on a US stock (IBCFD, smart-routed): the stock's market, no trades of its own."""
    return replace(
        stock,
        con_id=con_id,
        sec_type="CFD",
        primary_exchange="",
        trading_class=stock.symbol,
        valid_exchanges="SMART,IBCFD",
        stock_type="",
        isin="",
        head=max(stock.head, utc(2012, 1, 3)),
        volume_per_minute=0,
        derivative_sec_types=(),
        market_con_id=stock.con_id,
        under_con_id=stock.con_id,
        under_symbol=stock.symbol,
        under_sec_type="STK",
    )


# conIds are plausible: IB's CFD conIds are not published
_CFD_ROWS = (("AAPL", 143916318), ("MSFT", 143916322), ("TSLA", 143916358), ("SPY", 143916380))
CFDS = tuple(_cfd(c, next(s for s in STOCKS if s.symbol == sym)) for sym, c in _CFD_ROWS)

# Vanguard 500 Index Fund Admiral Shares (VFIAX): its real ticker, ISIN and inception; the conId
# is plausible. A fund prices once a day, at its NAV.
FUNDS = (
    Instrument(
        con_id=47099530,
        symbol="VFIAX",
        sec_type="FUND",
        exchange="FUNDSERV",
        primary_exchange="FUNDSERV",
        currency="USD",
        local_symbol="VFIAX",
        trading_class="VFIAX",
        long_name="VANGUARD 500 INDEX FUND ADMIRAL SHARES",
        venue="fundserv",
        price=480.0,
        decimals=2,
        tick_units=1,
        market_rule=26,
        head=utc(2000, 11, 13),
        valid_exchanges="FUNDSERV",
        order_types=FUND_ORDER_TYPES,
        industry="Funds",
        category="Equity Fund",
        subcategory="Large Blend",
        isin="US9229087104",
        volatility=0.16,
        daily_price=True,
        size_rules=("0.001", "0.001", "1"),
    ),
)


def _crypto(con_id, symbol, name, price, tick_units, rule, vol, volume):
    return Instrument(
        con_id=con_id,
        symbol=symbol,
        sec_type="CRYPTO",
        exchange="PAXOS",
        primary_exchange="",
        currency="USD",
        local_symbol=f"{symbol}.USD",
        trading_class=symbol,
        long_name=name,
        venue="crypto_paxos",
        price=price,
        decimals=2,
        tick_units=tick_units,
        market_rule=rule,
        head=utc(2021, 9, 14, 0, 0),
        valid_exchanges="PAXOS",
        order_types=CRYPTO_ORDER_TYPES,
        volatility=vol,
        volume_per_minute=volume,  # whole coins a minute (an approximation: no fractional prints)
        size_rules=("0.0001", "0.00000001", "0.0001"),
    )


# conIds as IB lists BTC and ETH on PAXOS; the minimum size and increment are plausible
CRYPTO = (
    _crypto(479624278, "BTC", "Bitcoin", 60000.0, 25, 3002, 0.6, 3),
    _crypto(495759171, "ETH", "Ethereum", 3200.0, 5, 3003, 0.75, 40),
)


def _treasury(con_id: int, cusip_base: str, coupon: float, issued: str, matures: str):
    cusip = cusip_base + cusip_check_digit(cusip_base)
    terms = BondTerms(cusip, coupon, issued, matures, ratings="AA+")
    terms = replace(terms, desc_append=description(terms))
    return Instrument(
        con_id=con_id,
        symbol="US-T",
        sec_type="BOND",
        exchange="SMART",
        primary_exchange="",
        currency="USD",
        local_symbol=cusip,
        trading_class="US-T",
        long_name="United States Treasury Note/Bond",
        venue="us_bond",
        price=100.0,
        decimals=3,
        tick_units=5,
        market_rule=3001,
        head=datetime.strptime(issued, "%Y%m%d").replace(hour=12, tzinfo=UTC),
        valid_exchanges="SMART",
        order_types=BOND_ORDER_TYPES,
        isin=isin_of(cusip),
        volatility=0.05,
        volume_per_minute=40,
        face_value=1_000,
        size_rules=("1", "1", "1"),
        bond=terms,
    )


# Integral coupons only: ib_async decodes a bond's coupon as an int and drops the whole reply on
# "4.25". 91282CJZ5 (4% of Feb 2034) is a real 10-year note; the other CUSIPs are plausible
# (the 91282C / 912810 forms with a valid check digit), as are all the conIds.
# fmt: off
TREASURIES = (
    _treasury(658394311, "91282CJY", 4.0, "20240215", "20270215"),
    _treasury(623145607, "91282CGE", 4.0, "20230131", "20280131"),
    _treasury(658394302, "91282CJZ", 4.0, "20240215", "20340215"),
    _treasury(647288116, "912810TW", 4.0, "20231115", "20531115"),
)
# fmt: on

INDICES = (
    _index(416904, "SPX", "S&P 500 Stock Index", "CBOE", 5600.0, 0.16),
    _index(416843, "NDX", "NASDAQ 100 Stock Index", "NASDAQ", 19800.0, 0.20),
    _index(13455763, "VIX", "CBOE Volatility Index", "CBOE", 16.0, 0.9),
)


def _fx(con_id, base, quote, price, decimals, rule):
    return Instrument(
        con_id=con_id,
        symbol=base,
        sec_type="CASH",
        exchange="IDEALPRO",
        primary_exchange="",
        currency=quote,
        local_symbol=f"{base}.{quote}",
        trading_class=f"{base}.{quote}",
        long_name="European Monetary Union Euro" if base == "EUR" else f"{base} {quote}",
        venue="fx_idealpro",
        price=price,
        decimals=decimals,
        tick_units=1,
        market_rule=rule,
        head=utc(2005, 1, 3, 0, 0),
        valid_exchanges="IDEALPRO",
        order_types=FX_ORDER_TYPES,
        volatility=0.08,
    )


FOREX = (
    _fx(12087792, "EUR", "USD", 1.085, 5, 239),
    _fx(12087797, "GBP", "USD", 1.27, 5, 239),
    _fx(15016059, "USD", "JPY", 150.0, 3, 240),
    _fx(14433401, "AUD", "USD", 0.66, 5, 239),
)


@dataclass(frozen=True)
class FutureSpec:
    """A futures root: its ladder of expiries is generated between FUTURE_YEARS."""

    symbol: str
    exchange: str
    venue: str
    long_name: str
    multiplier: str
    price: float
    tick_units: int
    market_rule: int
    volatility: float
    months: str  # IB month codes listed, e.g. "HMUZ"
    con_id_base: int
    under_con_id: int = 0


FUTURE_SPECS = (
    FutureSpec(
        "ES",
        "CME",
        "cme_globex",
        "E-mini S&P 500",
        "50",
        5650.0,
        25,
        62,
        0.16,
        "HMUZ",
        495_000_000,
        11004968,
    ),
    FutureSpec(
        "NQ",
        "CME",
        "cme_globex",
        "E-mini Nasdaq-100",
        "20",
        19900.0,
        25,
        62,
        0.20,
        "HMUZ",
        497_000_000,
        11004958,
    ),
    FutureSpec(
        "CL",
        "NYMEX",
        "nymex_globex",
        "Light Sweet Crude Oil",
        "1000",
        75.0,
        1,
        110,
        0.35,
        "FGHJKMNQUVXZ",
        498_000_000,
        0,
    ),
)
FUTURE_YEARS = range(2022, 2029)
MONTH_CODES = "FGHJKMNQUVXZ"


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def _business_day_before(day: date, count: int) -> date:
    while count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def _future(spec: FutureSpec, year: int, month: int) -> Instrument:
    if spec.symbol == "CL":  # expires three business days before the 25th of the prior month
        prior = date(year - (month == 1), 12 if month == 1 else month - 1, 25)
        last = _business_day_before(prior, 3)
    else:
        last = third_friday(year, month)
    code = MONTH_CODES[month - 1]
    return Instrument(
        con_id=spec.con_id_base + year * 100 + month,
        symbol=spec.symbol,
        sec_type="FUT",
        exchange=spec.exchange,
        primary_exchange="",
        currency="USD",
        local_symbol=f"{spec.symbol}{code}{year % 10}",
        trading_class=spec.symbol,
        long_name=spec.long_name,
        venue=spec.venue,
        price=spec.price,
        decimals=2,
        tick_units=spec.tick_units,
        market_rule=spec.market_rule,
        head=datetime(year - 2, month, 1, 22, tzinfo=UTC),
        multiplier=spec.multiplier,
        last_trade_date=f"{last:%Y%m%d}",
        contract_month=f"{year}{month:02d}",
        valid_exchanges=spec.exchange,
        order_types=FUTURE_ORDER_TYPES,
        under_con_id=spec.under_con_id,
        under_symbol=spec.symbol,
        under_sec_type="IND",
        volatility=spec.volatility,
        volume_per_minute=2_000 if spec.symbol != "CL" else 600,
    )


@cache
def futures() -> tuple[Instrument, ...]:
    return tuple(
        _future(spec, year, MONTH_CODES.index(code) + 1)
        for spec in FUTURE_SPECS
        for year in FUTURE_YEARS
        for code in spec.months
    )


def front_month(symbol: str, now: datetime) -> Instrument | None:
    """The nearest unexpired future of a root: what CONTFUT resolves to."""
    live = [f for f in futures() if f.symbol == symbol and not f.expired(now)]
    return min(live, key=lambda f: f.last_trade_date) if live else None


def continuous(symbol: str, now: datetime) -> Instrument | None:
    front = front_month(symbol, now)
    if front is None:
        return None
    return replace(front, sec_type="CONTFUT", extra={"front": front.con_id})
