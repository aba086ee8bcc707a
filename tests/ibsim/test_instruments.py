"""The rest of IB's instruments through unmodified ib_async: US Treasuries (BOND), CFDs on US
stocks, a mutual fund (FUND) and crypto on PAXOS. Each resolves, backfills with every
whatToShow IB serves for it (and IB's 321 for one it does not), and trades: fills, executions,
positions and the portfolio. The clock is NOW (Wednesday 2024-07-10, 11:00 New York).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from ib_async import CFD, IB, Contract, Crypto, LimitOrder, MarketOrder, Order, Stock
from ibapi.order import Order as ApiOrder

from ibfacts.history import WHAT_TO_SHOW_FOR
from ibsim.clock import ManualClock
from ibsim.market.catalog import Catalog
from ibsim.market.quotes import quote_at
from tests.kit.gateway import NOW, request_error
from tests.kit.ibapi_harness import TradesApp
from tests.kit.ibapi_harness import contract as ibapi_contract
from tests.kit.waiting import ib_until

T0 = int(NOW.timestamp())
CATALOG = Catalog(ManualClock(NOW))
TEN_YEAR = Contract(symbol="91282CJZ5", secType="BOND", exchange="SMART", currency="USD")
BTC = Crypto("BTC", "PAXOS", "USD")
ETH = Crypto("ETH", "PAXOS", "USD")
AAPL_CFD = CFD("AAPL", "SMART", "USD")
VFIAX = Contract(symbol="VFIAX", secType="FUND", exchange="FUNDSERV", currency="USD")
BY_SEC_TYPE = {"BOND": TEN_YEAR, "CRYPTO": BTC, "CFD": AAPL_CFD, "FUND": VFIAX}
pytestmark = pytest.mark.usefixtures("ib_async_decoded_everything")


def quote(con_id: int):
    inst = CATALOG.by_con_id(con_id)
    assert inst is not None
    return quote_at(inst, T0)


# ----------------------------------------------------------------------------- reference data
@pytest.mark.parametrize(
    "query",
    [
        TEN_YEAR,
        Contract(secIdType="ISIN", secId="US91282CJZ59", secType="BOND"),
        Contract(secIdType="CUSIP", secId="91282CJZ5"),
        Contract(conId=658394302),
    ],
    ids=["cusip-as-symbol", "isin", "cusip-sec-id", "con-id"],
)
def test_a_treasury_resolves_by_cusip_isin_or_con_id(ib, query):
    [bond] = ib.reqContractDetails(query)
    c = bond.contract
    assert (c.conId, c.symbol, c.secType, c.exchange, c.currency) == (
        658394302, "US-T", "BOND", "SMART", "USD",
    )  # fmt: skip
    assert (bond.cusip, bond.coupon, bond.maturity, bond.issueDate) == (
        "91282CJZ5", 4, "20340215", "20240215",
    )  # fmt: skip
    assert bond.descAppend == "US-T 4 02/15/34" and bond.bondType == "US-T"
    assert (bond.minSize, bond.sizeIncrement, bond.minTick) == (1, 1, 0.005)


def test_every_treasury_answers_to_the_issuer_symbol(ib):
    bonds = ib.reqContractDetails(Contract(symbol="US-T", secType="BOND"))
    assert sorted(b.maturity for b in bonds) == ["20270215", "20280131", "20340215", "20531115"]


@pytest.mark.parametrize(
    ("query", "con_id", "min_size", "increment"),
    [
        (AAPL_CFD, 143916318, 1, 1),  # whole shares
        (BTC, 479624278, 0.0001, 1e-08),
        (ETH, 495759171, 0.0001, 1e-08),
        (VFIAX, 47099530, 0.001, 0.001),
    ],
)
def test_cfds_crypto_and_a_fund_resolve_with_their_size_rules(
    ib, query, con_id, min_size, increment
):
    [details] = ib.reqContractDetails(query)
    assert details.contract.conId == con_id
    assert (details.minSize, details.sizeIncrement) == (min_size, increment)
    [qualified] = ib.qualifyContracts(query)
    assert qualified.conId == con_id


def test_a_cfd_is_on_its_stock_and_crypto_trades_around_the_clock(ib):
    [cfd] = ib.reqContractDetails(AAPL_CFD)
    assert (cfd.underConId, cfd.validExchanges) == (265598, "SMART,IBCFD")
    [btc] = ib.reqContractDetails(BTC)
    assert "20240713:0000-20240714:0000" in btc.tradingHours  # a Saturday
    assert btc.liquidHours == btc.tradingHours and btc.timeZoneId == "UTC"
    [rule] = ib.reqMarketRule(int(btc.marketRuleIds))
    assert rule.increment == 0.25


def test_matching_symbols_finds_crypto_and_the_fund_but_not_cfds(ib):
    found = {(d.contract.symbol, d.contract.secType) for d in ib.reqMatchingSymbols("BTC")}
    assert ("BTC", "CRYPTO") in found
    found = {(d.contract.symbol, d.contract.secType) for d in ib.reqMatchingSymbols("AAPL")}
    assert ("AAPL", "STK") in found and ("AAPL", "CFD") not in found
    found = {d.contract.secType for d in ib.reqMatchingSymbols("VANGUARD 500")}
    assert found == {"FUND"}


# ----------------------------------------------------------------------------- history
SERVED = [(t, what) for t in BY_SEC_TYPE for what in WHAT_TO_SHOW_FOR[t]]


def _bars(ib: IB, contract: Contract, what: str, duration: str = "1 D", size: str = "1 hour"):
    return ib.reqHistoricalData(contract, "", duration, size, what, False, formatDate=2)


@pytest.mark.parametrize(("sec_type", "what"), SERVED, ids=[f"{t}-{w}" for t, w in SERVED])
def test_every_served_what_to_show_backfills(ib, sec_type, what):
    bars = _bars(ib, BY_SEC_TYPE[sec_type], what)
    assert bars and all(
        b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars
    )


@pytest.mark.parametrize(
    ("contract", "what"),
    [(AAPL_CFD, "TRADES"), (BTC, "TRADES"), (VFIAX, "TRADES"), (TEN_YEAR, "ADJUSTED_LAST"),
     (Stock("AAPL", "SMART", "USD"), "YIELD_BID"), (Stock("AAPL", "SMART", "USD"), "AGGTRADES")],
)  # fmt: skip
def test_a_what_to_show_ib_does_not_serve_is_refused_with_321(ib, contract, what):
    request = ib.reqHistoricalDataAsync(contract, "", "1 D", "1 hour", what, False, 2)
    code, text = request_error(ib, request)
    assert code == 321 and text.endswith(f"What to show value of {what} rejected.")


def test_a_cfd_shows_its_stocks_quotes(ib):
    stock = _bars(ib, Stock("AAPL", "SMART", "USD"), "BID_ASK")
    cfd = _bars(ib, AAPL_CFD, "BID_ASK")
    assert [(b.date, b.open, b.high, b.low, b.close) for b in cfd] == [
        (b.date, b.open, b.high, b.low, b.close) for b in stock
    ]


def test_a_treasury_is_quoted_in_percent_of_par_and_its_bid_yields_more(ib):
    bids = _bars(ib, TEN_YEAR, "BID")
    asks = _bars(ib, TEN_YEAR, "ASK")
    assert all(80 < b.close < 110 for b in bids)
    assert all(b.close < a.close for b, a in zip(bids, asks, strict=True))
    bid_yields = _bars(ib, TEN_YEAR, "YIELD_BID")
    ask_yields = _bars(ib, TEN_YEAR, "YIELD_ASK")
    assert all(3 < y.close < 6 for y in bid_yields)
    assert all(b.close > a.close for b, a in zip(bid_yields, ask_yields, strict=True))


def test_a_fund_has_one_nav_a_day(ib):
    bars = _bars(ib, VFIAX, "MIDPOINT", "5 D", "1 hour")
    by_day: dict = {}
    for b in bars:
        by_day.setdefault(b.date.date(), set()).update({b.open, b.high, b.low, b.close})
    assert len(by_day) == 5 and all(len(prices) == 1 for prices in by_day.values())
    assert len({next(iter(p)) for p in by_day.values()}) > 1  # it moves from day to day


def test_crypto_trades_on_the_weekend(ib):
    sunday = datetime(2024, 7, 7, 0, 0, tzinfo=UTC)
    bars = ib.reqHistoricalData(BTC, sunday, "1 D", "1 hour", "AGGTRADES", True, formatDate=2)
    assert len(bars) == 24 and all(b.volume > 0 for b in bars)
    assert bars[0].date == datetime(2024, 7, 6, 0, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------- orders
def _done(ib: IB, contract: Contract, order: Order):
    trade = ib.placeOrder(contract, order)
    ib_until(ib, trade.isDone)
    return trade


def test_a_cash_quantity_buys_fractional_bitcoin_and_sells_it_back(single_gateway, connect):
    ib = connect(single_gateway)
    ask, bid = quote(479624278).ask, quote(479624278).bid
    buy = _done(ib, BTC, Order(action="BUY", orderType="MKT", cashQty=500, tif="IOC"))
    assert buy.orderStatus.status == "Filled"
    bought = float(int(500 / ask * 1e8)) / 1e8  # the cash over the ask, down to 1e-8 BTC
    assert buy.order.cashQty == 500 and buy.order.totalQuantity == pytest.approx(bought)
    [fill] = buy.fills
    assert (fill.execution.shares, fill.execution.price) == (pytest.approx(bought), ask)
    ib_until(ib, lambda: fill.commissionReport.commission == 1.75)  # IB's crypto minimum
    ib_until(ib, lambda: any(p.contract.conId == 479624278 for p in ib.positions()))
    [held] = [p for p in ib.positions() if p.contract.conId == 479624278]
    assert held.position == pytest.approx(bought) and held.position < 1
    ib_until(ib, lambda: any(p.contract.conId == 479624278 for p in ib.portfolio()))
    [item] = [p for p in ib.portfolio() if p.contract.conId == 479624278]
    assert item.marketValue == pytest.approx(bought * quote(479624278).mid, abs=0.01)
    sell = _done(ib, BTC, LimitOrder("SELL", bought, bid, tif="GTC"))
    assert sell.orderStatus.status == "Filled" and sell.fills[0].execution.price == bid
    ib_until(
        ib, lambda: all(p.position == 0 for p in ib.positions() if p.contract.conId == 479624278)
    )


def test_the_official_client_reads_a_cash_order_and_its_fractional_fill(single_gateway):
    app = TradesApp().start(single_gateway.port)
    try:
        order = ApiOrder()
        order.action, order.orderType, order.tif, order.cashQty = "BUY", "MKT", "IOC", 250.0
        btc = ibapi_contract(symbol="BTC", secType="CRYPTO", exchange="PAXOS", currency="USD")
        app.placeOrder(1, btc, order)
        deadline = time.monotonic() + 5
        while (event := app.next_event(-1, deadline - time.monotonic())).name != "execDetails":
            pass
        _, execution = event.args
        expected = Decimal(int(250 / quote(479624278).ask * 10**8)) / 10**8
        assert (execution.shares, execution.price) == (expected, quote(479624278).ask)
        placed = next(e.args[1] for e in app.drain("orders") if e.name == "openOrder")
        assert placed.cashQty == 250.0
        app.sync()
    finally:
        app.close()
    assert not app.decode_failures, f"ibapi could not decode: {app.decode_failures}"


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (MarketOrder("BUY", 0.01, tif="IOC"), "market buy order is for a cash quantity"),
        (Order(action="SELL", orderType="MKT", cashQty=500, tif="IOC"), "not a cash quantity"),
        (
            Order(action="BUY", orderType="LMT", lmtPrice=50_000, cashQty=500, tif="GTC"),
            "market buy orders only",
        ),
        (LimitOrder("BUY", 0.01, 50_000), "time in force DAY is not available"),
        (LimitOrder("BUY", 0.00005, 50_000, tif="GTC"), "below the minimum size 0.0001"),
        (LimitOrder("BUY", 0.000123456789, 50_000, tif="GTC"), "not a multiple of the size"),
    ],
    ids=[
        "mkt-buy-by-quantity",
        "sell-by-cash",
        "limit-by-cash",
        "day",
        "below-minimum",
        "off-increment",
    ],
)
def test_ibs_crypto_rules_refuse_an_order(single_gateway, connect, order, reason):
    ib = connect(single_gateway)
    trade = _done(ib, BTC, order)
    assert trade.orderStatus.status == "Inactive"
    assert any(reason in e.message for e in trade.log)


def test_a_crypto_order_cannot_be_modified_against_ibs_rules(single_gateway, connect):
    ib = connect(single_gateway)
    order = LimitOrder("BUY", 0.01, quote(479624278).bid - 1_000, tif="GTC")
    trade = ib.placeOrder(BTC, order)
    ib_until(ib, lambda: trade.orderStatus.status == "Submitted")
    order.tif = "DAY"
    ib.placeOrder(BTC, order)
    ib_until(ib, lambda: any(e.errorCode == 105 for e in trade.log))
    perm_id = trade.order.permId
    other = connect(single_gateway)  # its orders come from the wire, not from `order`
    [still] = [t.order for t in other.reqAllOpenOrders() if t.order.permId == perm_id]
    assert still.tif == "GTC"  # the refused modification left the order as it was


def test_a_treasury_trades_in_bonds_of_1000_face(single_gateway, connect):
    ib = connect(single_gateway)
    ask = quote(658394302).ask
    trade = _done(ib, TEN_YEAR, MarketOrder("BUY", 1))
    assert trade.fills[0].execution.price == ask
    ib_until(ib, lambda: trade.fills[0].commissionReport.commission == 5.0)  # IB's bond minimum
    ib_until(ib, lambda: any(p.contract.conId == 658394302 for p in ib.portfolio()))
    [item] = [p for p in ib.portfolio() if p.contract.conId == 658394302]
    assert item.marketValue == pytest.approx(quote(658394302).mid * 10, abs=0.01)
    assert item.averageCost == pytest.approx(ask * 10 + 5.0)
    refused = _done(ib, TEN_YEAR, MarketOrder("BUY", 1.5))
    assert refused.orderStatus.status == "Inactive"


def test_a_fund_order_fills_at_the_nav_and_a_cfd_at_its_stocks_ask(single_gateway, connect):
    ib = connect(single_gateway)
    nav = quote(47099530)
    assert nav.bid == nav.ask
    fund = _done(ib, VFIAX, MarketOrder("BUY", 10.5))
    assert fund.fills[0].execution.price == nav.ask
    ib_until(ib, lambda: fund.fills[0].commissionReport.commission == 14.95)
    assert _done(ib, VFIAX, LimitOrder("BUY", 1, nav.ask)).orderStatus.status == "Inactive"
    cfd = _done(ib, AAPL_CFD, MarketOrder("BUY", 100))
    assert cfd.fills[0].execution.price == quote(265598).ask
    ib_until(ib, lambda: any(p.contract.secType == "CFD" for p in ib.positions()))


def _usd_values(ib: IB) -> dict[str, float]:
    tags = ("TBondValue", "MutualFundValue", "NetLiquidationByCurrency")
    return {
        v.tag: float(v.value) for v in ib.accountValues() if v.currency == "USD" and v.tag in tags
    }


def test_bonds_crypto_funds_and_cfds_count_in_the_net_liquidation_value(single_gateway, connect):
    before = _usd_values(connect(single_gateway))
    ib = connect(single_gateway)
    bought = [
        (TEN_YEAR, MarketOrder("BUY", 2), 658394302, 2 * 10),
        (BTC, LimitOrder("BUY", 0.01, quote(479624278).ask, tif="GTC"), 479624278, 0.01),
        (VFIAX, MarketOrder("BUY", 3), 47099530, 3),
        (AAPL_CFD, MarketOrder("BUY", 100), 265598, 100),
    ]
    cost = 0.0
    for contract, order, market, units in bought:
        [fill] = _done(ib, contract, order).fills
        ib_until(ib, lambda fill=fill: fill.commissionReport.commission > 0)
        cost += fill.commissionReport.commission + units * (quote(market).ask - quote(market).mid)
    after = _usd_values(connect(single_gateway))  # a new client: the values as they are now
    assert after["TBondValue"] == pytest.approx(20 * quote(658394302).mid, abs=0.01)
    assert after["MutualFundValue"] == pytest.approx(3 * quote(47099530).mid, abs=0.01)
    assert after["NetLiquidationByCurrency"] == pytest.approx(
        before["NetLiquidationByCurrency"] - cost, abs=0.05
    )
