"""What the accounts are worth at an instant: positions valued on the synthetic market, the ledger
per currency, the account values and summary tags, P&L and family codes.

Pure functions of (Book, catalog, now): the gateway's handlers in `portfolio` send exactly what
these return, so tests and the warehouse can compute every expected value. Deterministic: prices
come from `book.mark_price` at `now` (the mid of the quote a client sees in that second, the
market the ticks, bars and fills read too), currencies convert with the fixed `book.USD_PER`
table.

The model (simple, coherent, documented; not IB's risk engine):

- **Market price**: `mark_price(instrument, now)`; an instrument the catalog does not know is
  valued at its average cost (multiplier 1, currency USD), so its P&L is 0.
- **Market value** = quantity x price x multiplier (a bond's: its face value / 100, its price
  being percent of par: 10 bonds of $1,000 at 98.5 are worth $9,850); **unrealized P&L** =
  market value - quantity x avgCost (avgCost includes the multiplier, as IB reports it);
  **realized P&L** = the position's `realized_pnl`. Money is rounded to cents (2 decimals),
  prices are sent as they are.
- **Daily P&L** (IB's "since the previous close" P&L, with today's fills from their fill price):
  `((quantity - filled) x (price - close) + sum(fill x (price - fill price))) x multiplier`, where
  `close` is the price at the last regular-session close before the most recent session open
  (so the daily P&L resets at the next open), `filled` the signed shares of the account's fills
  of the contract since that close (a fill replaced by a correction does not count).
- **Ledger** per currency (and `BASE`, the sum converted at `ExchangeRate`): CashBalance = the
  scenario's cash; FuturesPNL = the futures' daily P&L (futures settle into cash every day, so
  only today's P&L is not yet cash); TotalCashBalance = CashBalance + FuturesPNL;
  StockMarketValue / OptionMarketValue = signed values of STK / OPT positions; FxCashBalance =
  the value of FX (CASH) positions; MutualFundValue / TBondValue = the values of FUND / BOND
  positions; NetLiquidationByCurrency = TotalCashBalance + StockMarketValue +
  OptionMarketValue + FxCashBalance + MutualFundValue + TBondValue + the values of CFD and
  crypto positions; UnrealizedPnL, RealizedPnL (every position, since inception); other funds,
  corporate bonds, bills, warrants, dividends, accruals: 0.
- **Account** (in the base currency): TotalCashValue = SettledCash = BASE TotalCashBalance;
  NetLiquidation = BASE NetLiquidationByCurrency; GrossPositionValue = sum of |value| of stock,
  option, bond, fund, CFD and crypto positions; EquityWithLoanValue = RegTEquity =
  NetLiquidation - OptionMarketValue;
  PreviousDayEquityWithLoanValue = EquityWithLoanValue - the daily P&L of every non-option
  position; InitMarginReq / MaintMarginReq = sum of |value| x `MARGIN_RATES`; RegTMargin = 50 %
  of |stock value|; SMA = max(0, RegTEquity - RegTMargin); AvailableFunds = EquityWithLoanValue
  - InitMarginReq; ExcessLiquidity = EquityWithLoanValue - MaintMarginReq; BuyingPower =
  4 x max(0, min(EquityWithLoanValue, PreviousDay...) - InitMarginReq); Cushion =
  ExcessLiquidity / NetLiquidation (6 decimals); Leverage = GrossPositionValue / NetLiquidation
  (2 decimals); the Full* and LookAhead* values equal the current ones (no margin change
  ahead), LookAheadNextChange 0, HighestSeverity 0, DayTradesRemaining(T+n) -1 (unlimited),
  AccountType INDIVIDUAL, AccountReady true.
- **Several accounts** (P&L of a group, "All" or the master): each position converts to the base
  currency of the first account.

Value texts follow IB's account-value format (2 to 7 decimals: `1.00`, `0.0064`, `12345.60`);
texts without a currency (AccountType, Cushion, ...) carry currency "". Imports only ibsim.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import numpy as np

from ibsim.accounts.book import UNSET, USD_PER, Book, Position, mark_price
from ibsim.market.calendars import sessions
from ibsim.market.instruments import Instrument


class Instruments(Protocol):
    """What valuation needs from a catalog (ibsim.market.catalog.Catalog has it)."""

    def by_con_id(self, con_id: int) -> Instrument | None: ...


# (initial, maintenance) margin as a fraction of |market value|, by security type and side
# (+1 long, -1 short). Anything else: the whole value.
MARGIN_RATES: dict[tuple[str, int], tuple[float, float]] = {
    ("STK", 1): (0.25, 0.25),
    ("STK", -1): (0.30, 0.30),
    ("OPT", 1): (0.0, 0.0),  # a long option is paid in full
    ("OPT", -1): (1.0, 1.0),
    ("FUT", 1): (0.06, 0.05),  # of the notional
    ("FUT", -1): (0.06, 0.05),
    ("CASH", 1): (0.03, 0.025),
    ("CASH", -1): (0.03, 0.025),
}
REG_T_RATE = 0.5
BUYING_POWER_MULTIPLE = 4.0
ACCOUNT_TYPE = "INDIVIDUAL"

# The ledger keys, in IB's order (an account summary "$LEDGER" row, updateAccountValue per
# currency). Currency, AccountOrGroup and RealCurrency are texts.
LEDGER_KEYS = (
    "Currency", "CashBalance", "TotalCashBalance", "AccruedCash", "StockMarketValue",
    "OptionMarketValue", "FutureOptionValue", "FuturesPNL", "NetLiquidationByCurrency",
    "UnrealizedPnL", "RealizedPnL", "ExchangeRate", "FundValue", "NetDividend",
    "MutualFundValue", "MoneyMarketFundValue", "CorporateBondValue", "TBondValue", "TBillValue",
    "WarrantValue", "FxCashBalance", "AccountOrGroup", "RealCurrency", "IssuerOptionValue",
)  # fmt: skip
_ZERO_LEDGER = {
    "AccruedCash", "FutureOptionValue", "FundValue", "NetDividend", "MoneyMarketFundValue",
    "CorporateBondValue", "TBillValue", "WarrantValue", "IssuerOptionValue",
}  # fmt: skip
# Held at their market value without a ledger key of their own here: CFDs (IB funds only their
# margin and shows their P&L; the gateway books them as paid in full, so the net liquidation
# value is the same) and crypto.
_VALUED_WITHOUT_KEY = ("CFD", "CRYPTO")

# updateAccountValue / accountUpdateMulti keys besides the ledger, in the order sent, each with
# whether it carries the base currency (False: a text or ratio, currency "").
ACCOUNT_KEYS: tuple[tuple[str, bool], ...] = (
    ("AccountCode", False), ("AccountReady", False), ("AccountType", False),
    ("AvailableFunds", True), ("BuyingPower", True), ("Cushion", False),
    ("DayTradesRemaining", False), ("DayTradesRemainingT+1", False),
    ("DayTradesRemainingT+2", False), ("DayTradesRemainingT+3", False),
    ("DayTradesRemainingT+4", False), ("EquityWithLoanValue", True), ("ExcessLiquidity", True),
    ("FullAvailableFunds", True), ("FullExcessLiquidity", True), ("FullInitMarginReq", True),
    ("FullMaintMarginReq", True), ("GrossPositionValue", True), ("InitMarginReq", True),
    ("Leverage-S", False), ("LookAheadAvailableFunds", True), ("LookAheadExcessLiquidity", True),
    ("LookAheadInitMarginReq", True), ("LookAheadMaintMarginReq", True),
    ("LookAheadNextChange", False), ("MaintMarginReq", True), ("NetLiquidation", True),
    ("PreviousDayEquityWithLoanValue", True), ("RegTEquity", True), ("RegTMargin", True),
    ("SMA", True), ("TotalCashValue", True),
)  # fmt: skip

# reqAccountSummary tags (IB's account summary page, plus the spellings clients send), each with
# the account value it reports and whether it carries the base currency. Plus $LEDGER,
# $LEDGER:<currency> and $LEDGER:ALL.
SUMMARY_TAGS: dict[str, tuple[str, bool]] = {
    "AccountType": ("AccountType", False),
    "NetLiquidation": ("NetLiquidation", True),
    "TotalCashValue": ("TotalCashValue", True),
    "SettledCash": ("SettledCash", True),
    "AccruedCash": ("AccruedCash", True),
    "BuyingPower": ("BuyingPower", True),
    "EquityWithLoanValue": ("EquityWithLoanValue", True),
    "PreviousDayEquityWithLoanValue": ("PreviousDayEquityWithLoanValue", True),
    "PreviousEquityWithLoanValue": ("PreviousDayEquityWithLoanValue", True),
    "GrossPositionValue": ("GrossPositionValue", True),
    "RegTEquity": ("RegTEquity", True),
    "ReqTEquity": ("RegTEquity", True),
    "RegTMargin": ("RegTMargin", True),
    "ReqTMargin": ("RegTMargin", True),
    "SMA": ("SMA", True),
    "InitMarginReq": ("InitMarginReq", True),
    "MaintMarginReq": ("MaintMarginReq", True),
    "AvailableFunds": ("AvailableFunds", True),
    "ExcessLiquidity": ("ExcessLiquidity", True),
    "Cushion": ("Cushion", False),
    "FullInitMarginReq": ("FullInitMarginReq", True),
    "FullMaintMarginReq": ("FullMaintMarginReq", True),
    "FullAvailableFunds": ("FullAvailableFunds", True),
    "FullExcessLiquidity": ("FullExcessLiquidity", True),
    "LookAheadNextChange": ("LookAheadNextChange", False),
    "LookAheadInitMarginReq": ("LookAheadInitMarginReq", True),
    "LookAheadMaintMarginReq": ("LookAheadMaintMarginReq", True),
    "LookAheadAvailableFunds": ("LookAheadAvailableFunds", True),
    "LookAheadExcessLiquidity": ("LookAheadExcessLiquidity", True),
    "HighestSeverity": ("HighestSeverity", False),
    "DayTradesRemaining": ("DayTradesRemaining", False),
    "DayTradesRemainingT+1": ("DayTradesRemainingT+1", False),
    "DayTradesRemainingT+2": ("DayTradesRemainingT+2", False),
    "DayTradesRemainingT+3": ("DayTradesRemainingT+3", False),
    "DayTradesRemainingT+4": ("DayTradesRemainingT+4", False),
    "Leverage": ("Leverage-S", False),
}
LEDGER_TAG = "$LEDGER"


class AccountValue(NamedTuple):
    """One updateAccountValue / accountUpdateMulti row of an account."""

    key: str
    value: str
    currency: str


class SummaryValue(NamedTuple):
    """One accountSummary row."""

    account: str
    tag: str
    value: str
    currency: str


class PnL(NamedTuple):
    daily: float
    unrealized: float
    realized: float


class PnLSingle(NamedTuple):
    position: float
    daily: float
    unrealized: float
    realized: float
    value: float


@dataclass(frozen=True)
class Valued:
    """One position valued at `now`: what updatePortfolio and pnlSingle report."""

    account: str
    con_id: int
    instrument: Instrument | None  # None: not in the catalog (valued at its average cost)
    quantity: float
    avg_cost: float
    market_price: float
    market_value: float
    unrealized_pnl: float
    realized_pnl: float
    daily_pnl: float

    @property
    def sec_type(self) -> str:
        return self.instrument.sec_type if self.instrument else ""

    @property
    def currency(self) -> str:
        return self.instrument.currency if self.instrument else "USD"


# ----------------------------------------------------------------------------- formatting
def money(x: float) -> float:
    """Cents, and never -0.0."""
    return round(x, 2) + 0.0


def value_text(x: float) -> str:
    """An account value as IB writes it: 2 to 7 decimals (`1.00`, `0.0064`, `12345.60`)."""
    text = f"{round(x, 7) + 0.0:.7f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def number_text(x: float) -> str:
    """A float field of a message (price, value, P&L): the shortest text that reads back as x."""
    x = float(x) + 0.0
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def quantity_text(x: float) -> str:
    """A position size as both clients read it (ibapi: Decimal, ib_async: float)."""
    return number_text(x)


# ----------------------------------------------------------------------------- positions
def previous_close(inst: Instrument, now: datetime) -> int:
    """Epoch seconds of the regular-session close before the latest session open at `now`."""
    table = sessions(inst.venue, True)
    t = int(now.timestamp())
    latest = int(np.searchsorted(table.opens, t, side="right")) - 1
    if latest < 1:
        return t
    return int(table.closes[latest - 1])


def value_position(book: Book, catalog: Instruments, now: datetime, position: Position) -> Valued:
    inst = catalog.by_con_id(position.con_id)
    qty, avg = float(position.quantity), float(position.avg_cost)
    if inst is None:
        price, mult, daily = avg, 1.0, 0.0
    else:
        price, mult = mark_price(inst, now), inst.value_multiplier
        close_at = previous_close(inst, now)
        close = mark_price(inst, datetime.fromtimestamp(close_at, UTC))
        t = now.timestamp()
        fills = [
            (e.shares if e.side == "BOT" else -e.shares, e.price)
            for e in book.executions
            if e.account == position.account
            and e.con_id == position.con_id
            and not e.corrected_by
            and close_at < e.time.timestamp() <= t
        ]
        before = qty - sum(f for f, _ in fills)
        daily = (before * (price - close) + sum(f * (price - p) for f, p in fills)) * mult
    value = qty * price * mult
    return Valued(
        account=position.account,
        con_id=position.con_id,
        instrument=inst,
        quantity=qty,
        avg_cost=avg,
        market_price=price,
        market_value=money(value),
        unrealized_pnl=money(value - qty * avg),
        realized_pnl=money(float(position.realized_pnl)),
        daily_pnl=money(daily),
    )


def portfolio_rows(
    book: Book, catalog: Instruments, now: datetime, account_ids: Iterable[str] | None = None
) -> list[Valued]:
    """Every position of the accounts (all when None), valued, in the book's order."""
    wanted = None if account_ids is None else set(account_ids)
    return [
        value_position(book, catalog, now, p)
        for p in book.positions
        if wanted is None or p.account in wanted
    ]


# ----------------------------------------------------------------------------- ledger, account
def exchange_rate(currency: str, base: str) -> float:
    """Units of `base` per unit of `currency` (the fixed table)."""
    return USD_PER.get(currency, 1.0) / USD_PER.get(base, 1.0)


def to_base(amount: float, currency: str, base: str) -> float:
    return amount * exchange_rate(currency, base)


@dataclass(frozen=True)
class _Figures:
    """An account's unrounded numbers: ledger per currency (and BASE), and the account values."""

    ledger: dict[str, dict[str, float]]  # currency (BASE last) -> ledger key -> amount
    values: dict[str, float]  # account value key -> amount in the base currency


def _figures(book: Book, catalog: Instruments, now: datetime, account_id: str) -> _Figures:
    account = book.account(account_id)
    base = account.base_currency
    rows = portfolio_rows(book, catalog, now, (account_id,))
    currencies = sorted(set(account.cash) | {v.currency for v in rows})
    ledger: dict[str, dict[str, float]] = {}
    for cur in currencies:
        mine = [v for v in rows if v.currency == cur]

        def total(kind: str, field: str, mine=mine) -> float:
            return sum(getattr(v, field) for v in mine if v.sec_type == kind)

        row = dict.fromkeys(_ZERO_LEDGER, 0.0)
        row["CashBalance"] = float(account.cash.get(cur, 0.0))
        row["FuturesPNL"] = total("FUT", "daily_pnl")
        row["TotalCashBalance"] = row["CashBalance"] + row["FuturesPNL"]
        row["StockMarketValue"] = total("STK", "market_value")
        row["OptionMarketValue"] = total("OPT", "market_value")
        row["FxCashBalance"] = total("CASH", "market_value")
        row["MutualFundValue"] = total("FUND", "market_value")
        row["TBondValue"] = total("BOND", "market_value")
        row["NetLiquidationByCurrency"] = (
            row["TotalCashBalance"]
            + row["StockMarketValue"]
            + row["OptionMarketValue"]
            + row["FxCashBalance"]
            + row["MutualFundValue"]
            + row["TBondValue"]
            + sum(total(kind, "market_value") for kind in _VALUED_WITHOUT_KEY)
        )
        row["UnrealizedPnL"] = sum(v.unrealized_pnl for v in mine)
        row["RealizedPnL"] = sum(v.realized_pnl for v in mine)
        row["ExchangeRate"] = exchange_rate(cur, base)
        ledger[cur] = row
    base_row = {
        key: sum(to_base(ledger[c][key], c, base) for c in currencies)
        for key in LEDGER_KEYS
        if key not in ("Currency", "AccountOrGroup", "RealCurrency", "ExchangeRate")
    }
    base_row["ExchangeRate"] = 1.0
    ledger["BASE"] = base_row

    def in_base(v: Valued, amount: float) -> float:
        return to_base(amount, v.currency, base)

    nlv = base_row["NetLiquidationByCurrency"]
    elv = nlv - base_row["OptionMarketValue"]
    previous_elv = elv - sum(in_base(v, v.daily_pnl) for v in rows if v.sec_type != "OPT")
    init = maint = reg_t = gross = 0.0
    for v in rows:
        size = abs(in_base(v, v.market_value))
        rate_init, rate_maint = MARGIN_RATES.get(
            (v.sec_type, 1 if v.quantity >= 0 else -1), (1.0, 1.0)
        )
        init += size * rate_init
        maint += size * rate_maint
        if v.sec_type == "STK":
            reg_t += size * REG_T_RATE
        if v.sec_type in ("STK", "OPT", "BOND", "FUND", *_VALUED_WITHOUT_KEY):
            gross += size
    init, maint = money(init), money(maint)
    available, excess = elv - init, elv - maint
    values = {
        "NetLiquidation": nlv,
        "TotalCashValue": base_row["TotalCashBalance"],
        "SettledCash": base_row["TotalCashBalance"],
        "AccruedCash": 0.0,
        "GrossPositionValue": gross,
        "EquityWithLoanValue": elv,
        "RegTEquity": elv,
        "PreviousDayEquityWithLoanValue": previous_elv,
        "InitMarginReq": init,
        "MaintMarginReq": maint,
        "RegTMargin": reg_t,
        "SMA": max(0.0, elv - reg_t),
        "AvailableFunds": available,
        "ExcessLiquidity": excess,
        "BuyingPower": BUYING_POWER_MULTIPLE * max(0.0, min(elv, previous_elv) - init),
    }
    for key in ("InitMarginReq", "MaintMarginReq", "AvailableFunds", "ExcessLiquidity"):
        values[f"Full{key}"] = values[key]
        values[f"LookAhead{key}"] = values[key]
    values["Cushion"] = round(excess / nlv, 6) if nlv else 0.0
    values["Leverage-S"] = round(gross / nlv, 2) if nlv else 0.0
    return _Figures(ledger, values)


_TEXTS = {
    "AccountReady": "true",
    "AccountType": ACCOUNT_TYPE,
    "LookAheadNextChange": "0",
    "HighestSeverity": "0",
    "DayTradesRemaining": "-1",
    "DayTradesRemainingT+1": "-1",
    "DayTradesRemainingT+2": "-1",
    "DayTradesRemainingT+3": "-1",
    "DayTradesRemainingT+4": "-1",
}


def _value(figures: _Figures, key: str, account_id: str) -> str:
    if key == "AccountCode":
        return account_id
    if key in _TEXTS:
        return _TEXTS[key]
    amount = figures.values[key]  # ratios are rounded already, money to cents here
    return value_text(amount if key in ("Cushion", "Leverage-S") else money(amount))


def _ledger_rows(figures: _Figures, account_id: str, currencies: Sequence[str]) -> list[tuple]:
    """(key, value, currency) of the ledger of each currency in `currencies` (BASE allowed)."""
    out = []
    for cur in currencies:
        row = figures.ledger.get(cur)
        if row is None:
            continue
        for key in LEDGER_KEYS:
            if key in ("Currency", "RealCurrency"):
                text = cur
            elif key == "AccountOrGroup":
                text = account_id
            elif key == "ExchangeRate":
                text = value_text(round(row[key], 7))
            else:
                text = value_text(money(row[key]))
            out.append((key, text, cur))
    return out


def account_values(
    book: Book, catalog: Instruments, now: datetime, account_id: str, ledger_and_nlv: bool = False
) -> list[AccountValue]:
    """updateAccountValue / accountUpdateMulti rows of one account. `ledger_and_nlv`: the light
    form of reqAccountUpdatesMulti, the ledger of every currency plus NetLiquidation."""
    figures = _figures(book, catalog, now, account_id)
    base = book.account(account_id).base_currency
    currencies = ("BASE", *(c for c in figures.ledger if c != "BASE"))
    keys = (("NetLiquidation", True),) if ledger_and_nlv else ACCOUNT_KEYS
    rows = [
        AccountValue(key, _value(figures, key, account_id), base if has_currency else "")
        for key, has_currency in keys
    ]
    rows += [AccountValue(*r) for r in _ledger_rows(figures, account_id, currencies)]
    return rows


def summary(
    book: Book, catalog: Instruments, now: datetime, account_ids: Iterable[str], tags: str
) -> list[SummaryValue]:
    """accountSummary rows: for each account, each requested tag (comma list) in order. Unknown
    tags are ignored; `$LEDGER` is the BASE ledger, `$LEDGER:ALL` every currency's and BASE,
    `$LEDGER:EUR` one currency's. A row repeated by two tags is sent once."""
    wanted = [t.strip() for t in tags.split(",") if t.strip()]
    out: list[SummaryValue] = []
    for account_id in account_ids:
        figures = _figures(book, catalog, now, account_id)
        base = book.account(account_id).base_currency
        seen: set[tuple[str, str]] = set()

        def add(tag: str, text: str, currency: str, account_id=account_id, seen=seen) -> None:
            if (tag, currency) not in seen:
                seen.add((tag, currency))
                out.append(SummaryValue(account_id, tag, text, currency))

        for tag in wanted:
            if tag == LEDGER_TAG or tag.upper().startswith(LEDGER_TAG + ":"):
                which = tag.upper().partition(":")[2] or "BASE"
                if which == "ALL":
                    currencies = ("BASE", *(c for c in figures.ledger if c != "BASE"))
                else:
                    currencies = (which,)
                for key, text, cur in _ledger_rows(figures, account_id, currencies):
                    add(key, text, cur)
            elif tag in SUMMARY_TAGS:
                key, has_currency = SUMMARY_TAGS[tag]
                add(tag, _value(figures, key, account_id), base if has_currency else "")
    return out


# ----------------------------------------------------------------------------- P&L, family codes
def pnl(book: Book, catalog: Instruments, now: datetime, account_ids: Sequence[str]) -> PnL:
    """reqPnL: the accounts' daily, unrealized and realized P&L (base of the first account)."""
    if not account_ids:
        return PnL(0.0, 0.0, 0.0)
    base = book.account(account_ids[0]).base_currency
    rows = portfolio_rows(book, catalog, now, account_ids)
    return PnL(
        money(sum(to_base(v.daily_pnl, v.currency, base) for v in rows)),
        money(sum(to_base(v.unrealized_pnl, v.currency, base) for v in rows)),
        money(sum(to_base(v.realized_pnl, v.currency, base) for v in rows)),
    )


def pnl_single(
    book: Book, catalog: Instruments, now: datetime, account_ids: Sequence[str], con_id: int
) -> PnLSingle | None:
    """reqPnLSingle: one contract's position and P&L in the accounts; None when none ever held
    it (IB then sends nothing at all). A closed position (quantity 0) keeps its daily and
    realized P&L, its value is 0 and its unrealized P&L is unset (`UNSET`, IB's Double.MAX_VALUE
    for a value it does not have)."""
    rows = [v for v in portfolio_rows(book, catalog, now, account_ids) if v.con_id == con_id]
    if not rows:
        return None
    base = book.account(account_ids[0]).base_currency

    def total(field: str) -> float:
        return money(sum(to_base(getattr(v, field), v.currency, base) for v in rows))

    position = sum(v.quantity for v in rows)
    return PnLSingle(
        position,
        total("daily_pnl"),
        total("unrealized_pnl") if position else UNSET,
        total("realized_pnl"),
        total("market_value"),
    )


def family_codes(book: Book) -> list[tuple[str, str]]:
    """(account, family code) for every managed account: the master's code + "A" for an FA
    login, else the account id + "A"."""
    return [(a, f"{book.master or a}A") for a in book.managed]
