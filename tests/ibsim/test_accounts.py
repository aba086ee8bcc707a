"""Account data through a real socket: positions, account values and summary, portfolio, P&L and
family codes, for a single account and an FA master, with ib_async 2.1.0 and the official ibapi
client. Every expected value comes from the scenario or from `ibsim.accounts.valuation` (the pure
functions the gateway itself sends), computed here on a catalog of our own."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB, Contract, MarketOrder

from ibsim.accounts import valuation
from ibsim.accounts.book import Book
from ibsim.clock import ManualClock
from ibsim.handlers import portfolio
from ibsim.market.catalog import Catalog
from ibsim.server.table import HANDLERS
from tests.kit.gateway import NOW, request_error, sync
from tests.kit.ibapi_harness import IBApiApp
from tests.kit.scenarios import AAPL, ESU4, FA_MASTER, MSFT, SINGLE, SPY_CALL, SUBS
from tests.kit.waiting import WAIT, ib_until, poll_until

MASTER = FA_MASTER["master"]
CATALOG = Catalog(ManualClock(NOW))
LIMIT_TEXT = (
    "Maximum number of account summary requests exceeded; desubscribe to previous request first"
)


def book_of(scenario: dict[str, Any]) -> Book:
    return Book.from_scenario(scenario)


def expected_values(book: Book, accounts) -> set[tuple[str, str, str, str]]:
    return {
        (account, v.key, v.value, v.currency)
        for account in accounts
        for v in valuation.account_values(book, CATALOG, NOW, account)
    }


def until_end(ib: IB, req_id: int, send: Callable[[], None], timeout: float = 10.0) -> None:
    """Send a request whose end message resolves `req_id` in ib_async, and wait for that end."""
    future = ib.wrapper.startReq(req_id)
    send()
    ib.run(asyncio.wait_for(future, timeout))


def positions_multi(ib: IB, account: str, model_code: str = "") -> list[tuple]:
    """reqPositionsMulti through ib_async's client (IB has no high-level call for it)."""
    rows: list[tuple] = []
    ib.wrapper.positionMulti = lambda *args: rows.append(args)
    ib.wrapper.positionMultiEnd = ib.wrapper._endReq
    req_id = ib.client.getReqId()
    until_end(ib, req_id, lambda: ib.client.reqPositionsMulti(req_id, account, model_code))
    assert all(r[0] == req_id for r in rows)
    return [r[1:] for r in rows]  # account, modelCode, contract, pos, avgCost


def account_updates_multi(ib: IB, account: str, light: bool, model_code: str = "") -> list[tuple]:
    rows: list[tuple] = []
    original = ib.wrapper.accountUpdateMulti

    def record(req_id, *args):
        rows.append(args)
        original(req_id, *args)

    ib.wrapper.accountUpdateMulti = record
    req_id = ib.client.getReqId()
    until_end(
        ib, req_id, lambda: ib.client.reqAccountUpdatesMulti(req_id, account, model_code, light)
    )
    del ib.wrapper.accountUpdateMulti
    return rows  # account, modelCode, key, value, currency


def account_summary(
    ib: IB, group: str, tags: str, req_id: int | None = None
) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    original = ib.wrapper.accountSummary

    def record(req_id, account, tag, value, currency):
        rows.append((account, tag, value, currency))
        original(req_id, account, tag, value, currency)

    ib.wrapper.accountSummary = record
    req_id = ib.client.getReqId() if req_id is None else req_id
    until_end(ib, req_id, lambda: ib.client.reqAccountSummary(req_id, group, tags))
    del ib.wrapper.accountSummary
    return rows


# ----------------------------------------------------------------------------- the handlers
def test_cancel_account_summary_is_handled_here_not_only_acknowledged():
    # 63 is not one of account.py's acknowledged requests: portfolio must own it in the table
    # (ibsim.server.table), or a cancel would never free a summary slot.
    assert HANDLERS[63] is portfolio.cancel_account_summary
    assert HANDLERS[64] is portfolio.cancel_positions
    for msg_id in (61, 6, 62, 74, 76, 80, 92, 94):
        assert HANDLERS[msg_id].__module__ == "ibsim.handlers.portfolio"


# ----------------------------------------------------------------------------- single account
def test_a_fill_pushes_the_position_to_every_reqpositions_subscriber(single_gateway, connect):
    """As IB does: a `position` after each fill, to every client subscribed with reqPositions
    (ib_async subscribes at connect), whoever placed the order; none after cancelPositions."""
    watcher, trader, quiet = (
        connect(single_gateway),
        connect(single_gateway),
        connect(single_gateway),
    )
    quiet.client.cancelPositions()
    sync(quiet)

    def held(ib: IB) -> float:
        return sum(p.position for p in ib.positions() if p.contract.conId == MSFT)

    before = held(watcher)
    trade = trader.placeOrder(
        Contract(conId=MSFT, exchange="SMART"), MarketOrder("SELL", 7, account="DU123456")
    )
    ib_until(trader, trade.isDone)
    ib_until(watcher, lambda: held(watcher) == before - 7)
    ib_until(trader, lambda: held(trader) == before - 7)
    sync(quiet)
    assert held(quiet) == before  # it cancelled its subscription: no push


def test_single_account_connect_fills_positions_portfolio_and_values(single_gateway, connect):
    book = book_of(SINGLE)
    ib = connect(single_gateway)
    assert ib.managedAccounts() == ["DU123456"]

    positions = {(p.account, p.contract.conId): (p.position, p.avgCost) for p in ib.positions()}
    assert positions == {
        (p["account"], p["con_id"]): (float(p["quantity"]), p["avg_cost"])
        for p in SINGLE["positions"]
    }
    aapl = next(p.contract for p in ib.positions() if p.contract.conId == AAPL)
    assert (aapl.symbol, aapl.secType, aapl.exchange, aapl.currency) == (
        "AAPL", "STK", "NASDAQ", "USD",
    )  # fmt: skip
    es = next(p.contract for p in ib.positions() if p.contract.conId == ESU4)
    assert (es.secType, es.lastTradeDateOrContractMonth, es.multiplier, es.exchange) == (
        "FUT", "20240920", "50", "",
    )  # fmt: skip

    # one account: ib_async's connect asked for its account updates (and multi) already
    values = {(v.account, v.tag, v.value, v.currency) for v in ib.accountValues()}
    assert values == expected_values(book, ["DU123456"])
    assert ("DU123456", "CashBalance", "250000.00", "USD") in values
    assert ("DU123456", "AccountReady", "true", "") in values
    assert ("DU123456", "AccountCode", "DU123456", "") in values

    items = {i.contract.conId: i for i in ib.portfolio()}
    rows = valuation.portfolio_rows(book, CATALOG, NOW)
    assert set(items) == {r.con_id for r in rows}
    for r in rows:
        item = items[r.con_id]
        assert item.account == r.account
        assert item.position == r.quantity
        assert item.marketPrice == r.market_price
        assert item.marketValue == r.market_value
        assert item.averageCost == r.avg_cost
        assert item.unrealizedPNL == r.unrealized_pnl
        assert item.realizedPNL == r.realized_pnl
    aapl_item = items[AAPL]
    assert aapl_item.marketValue == round(100 * aapl_item.marketPrice, 2)
    assert aapl_item.unrealizedPNL == round(100 * (aapl_item.marketPrice - 180.25), 2)
    assert items[ESU4].marketValue == round(2 * items[ESU4].marketPrice * 50, 2)
    assert items[ESU4].contract.primaryExchange == ""


def test_single_account_values_add_up(single_gateway, connect):
    ib = connect(single_gateway)
    value = {(v.tag, v.currency): v.value for v in ib.accountValues()}
    items = {i.contract.conId: i for i in ib.portfolio()}
    stock = items[AAPL].marketValue
    futures_pnl = float(value[("FuturesPNL", "USD")])
    assert float(value[("StockMarketValue", "USD")]) == stock
    assert float(value[("TotalCashValue", "USD")]) == pytest.approx(250_000.0 + futures_pnl)
    assert float(value[("NetLiquidation", "USD")]) == pytest.approx(250_000.0 + futures_pnl + stock)
    assert float(value[("GrossPositionValue", "USD")]) == stock  # futures are not in it
    assert value[("ExchangeRate", "BASE")] == "1.00"
    assert value[("NetLiquidationByCurrency", "BASE")] == value[("NetLiquidation", "USD")]


def test_single_account_summary_serves_every_standard_tag(single_gateway, connect):
    book = book_of(SINGLE)
    ib = connect(single_gateway)
    sent: list[tuple] = []
    original = ib.client.reqAccountSummary
    ib.client.reqAccountSummary = lambda *args: (sent.append(args), original(*args))
    summary = ib.accountSummary()
    [(_, group, tags)] = sent
    assert group == "All"
    got = {(v.account, v.tag, v.value, v.currency) for v in summary}
    assert got == set(valuation.summary(book, CATALOG, NOW, ["DU123456"], tags))
    requested = {t for t in tags.split(",") if not t.startswith("$")}
    assert requested <= {v.tag for v in summary}  # every tag ib_async asks for is answered
    assert set(valuation.LEDGER_KEYS) <= {v.tag for v in summary}
    tag = {(v.tag, v.currency): v.value for v in summary}
    assert tag[("AccountType", "")] == "INDIVIDUAL"
    assert tag[("DayTradesRemaining", "")] == "-1"
    assert tag[("CashBalance", "USD")] == tag[("CashBalance", "BASE")] == "250000.00"
    assert tag[("NetLiquidation", "USD")] == tag[("NetLiquidationByCurrency", "BASE")]


def test_single_account_pnl(single_gateway, connect):
    book = book_of(SINGLE)
    ib = connect(single_gateway)
    account = ib.reqPnL("DU123456")
    singles = {c: ib.reqPnLSingle("DU123456", "", c) for c in (AAPL, ESU4)}
    ib_until(ib, lambda: not math.isnan(account.dailyPnL))
    ib_until(ib, lambda: all(not math.isnan(p.dailyPnL) for p in singles.values()))
    expected = valuation.pnl(book, CATALOG, NOW, ["DU123456"])
    assert (account.dailyPnL, account.unrealizedPnL, account.realizedPnL) == expected
    for con_id, p in singles.items():
        want = valuation.pnl_single(book, CATALOG, NOW, ["DU123456"], con_id)
        assert (p.position, p.dailyPnL, p.unrealizedPnL, p.realizedPnL, p.value) == want
    # AAPL was bought today at 180.25: its daily P&L runs from the fill, as its unrealized P&L
    assert singles[AAPL].dailyPnL == singles[AAPL].unrealizedPnL
    assert account.unrealizedPnL == pytest.approx(
        singles[AAPL].unrealizedPnL + singles[ESU4].unrealizedPnL
    )


# ----------------------------------------------------------------------------- FA master
def test_fa_connect_lists_the_master_and_every_position(fa_gateway, connect):
    book = book_of(FA_MASTER)
    ib = connect(fa_gateway)
    assert ib.managedAccounts() == [MASTER, *SUBS]
    positions = {(p.account, p.contract.conId): (p.position, p.avgCost) for p in ib.positions()}
    assert positions == {
        (p["account"], p["con_id"]): (float(p["quantity"]), p["avg_cost"])
        for p in FA_MASTER["positions"]
    }
    option = next(p.contract for p in ib.positions() if p.contract.conId == SPY_CALL)
    assert (option.secType, option.strike, option.right, option.multiplier) == (
        "OPT", 390.0, "C", "100",
    )  # fmt: skip
    # several accounts: connect asks reqAccountUpdatesMulti per managed account (the master's
    # covers every sub-account), no reqAccountUpdates, so no portfolio yet
    values = {(v.account, v.tag, v.value, v.currency) for v in ib.accountValues()}
    assert values == expected_values(book, SUBS)
    assert {v.modelCode for v in ib.accountValues()} == {""}
    assert ib.portfolio() == []
    for account in book.accounts:  # cash per currency, exactly the scenario's
        for currency, amount in account.cash.items():
            assert (account.id, "CashBalance", f"{amount:.2f}", currency) in values


def test_fa_connect_with_the_master_account_gets_its_account_download_end(fa_gateway):
    book = book_of(FA_MASTER)
    ib = IB()
    # every startup request is answered (the account download ends): one left waiting for its
    # timeout would raise here, however long this machine takes to get there
    ib.connect(
        "127.0.0.1", fa_gateway.port, clientId=190, timeout=WAIT, account=MASTER,
        raiseSyncErrors=True,
    )  # fmt: skip
    try:
        rows = valuation.portfolio_rows(book, CATALOG, NOW)
        items = {(i.account, i.contract.conId): i for i in ib.portfolio()}
        assert set(items) == {(r.account, r.con_id) for r in rows}
        for r in rows:
            item = items[r.account, r.con_id]
            assert (item.position, item.marketPrice, item.marketValue) == (
                r.quantity, r.market_price, r.market_value,
            )  # fmt: skip
            assert (item.averageCost, item.unrealizedPNL) == (r.avg_cost, r.unrealized_pnl)
        assert {(v.account, v.tag, v.value, v.currency) for v in ib.accountValues()} == (
            expected_values(book, SUBS)
        )
    finally:
        ib.disconnect()


def test_fa_account_updates_of_one_sub_account(fa_gateway, connect):
    book = book_of(FA_MASTER)
    ib = connect(fa_gateway)
    ib.reqAccountUpdates(SUBS[2])
    items = ib.portfolio(SUBS[2])
    rows = valuation.portfolio_rows(book, CATALOG, NOW, [SUBS[2]])
    assert sorted((i.contract.conId, i.position, i.marketValue) for i in items) == sorted(
        (r.con_id, r.quantity, r.market_value) for r in rows
    )
    assert ib.portfolio(SUBS[0]) == []
    msft = next(i for i in items if i.contract.conId == MSFT)
    assert msft.position == -15 and msft.marketValue < 0
    assert msft.unrealizedPNL == round(-15 * msft.marketPrice + 15 * 452.5, 2)


@pytest.mark.parametrize(
    ("account", "holders"),
    [("All", SUBS), ("Pair", SUBS[:2]), (SUBS[1], SUBS[1:2]), (f"{MASTER}A", SUBS)],
)
def test_fa_positions_multi(fa_gateway, connect, account, holders):
    ib = connect(fa_gateway)
    rows = positions_multi(ib, account, "model1")
    assert sorted((a, m, c.conId, pos, cost) for a, m, c, pos, cost in rows) == sorted(
        (p["account"], "model1", p["con_id"], float(p["quantity"]), p["avg_cost"])
        for p in FA_MASTER["positions"]
        if p["account"] in holders
    )


def test_fa_positions_multi_of_an_unknown_account_is_only_the_end(fa_gateway, connect):
    ib = connect(fa_gateway)
    assert positions_multi(ib, "DU999") == []


def test_fa_account_updates_multi_light_form(fa_gateway, connect):
    book = book_of(FA_MASTER)
    ib = connect(fa_gateway)
    rows = account_updates_multi(ib, SUBS[2], light=True, model_code="m")
    want = valuation.account_values(book, CATALOG, NOW, SUBS[2], ledger_and_nlv=True)
    assert rows == [(SUBS[2], "m", *v) for v in want]
    keys = {key for _, _, key, _, _ in rows}
    assert keys == {"NetLiquidation", *valuation.LEDGER_KEYS}
    assert (SUBS[2], "m", "CashBalance", "1000.00", "EUR") in rows
    full = account_updates_multi(ib, "Pair", light=False)
    assert {r[0] for r in full} == set(SUBS[:2])
    assert len(full) == sum(len(valuation.account_values(book, CATALOG, NOW, a)) for a in SUBS[:2])


def test_fa_account_summary_of_all_and_of_a_group(fa_gateway, connect):
    book = book_of(FA_MASTER)
    ib = connect(fa_gateway)
    summary = {(v.account, v.tag, v.value, v.currency) for v in ib.accountSummary()}
    assert {a for a, *_ in summary} == set(SUBS)
    for account in SUBS:
        mine = {(t, v, c) for a, t, v, c in summary if a == account}
        nlv = valuation.summary(book, CATALOG, NOW, [account], "NetLiquidation")[0]
        assert ("NetLiquidation", nlv.value, "USD") in mine
        for currency, amount in book.account(account).cash.items():
            assert ("CashBalance", f"{amount:.2f}", currency) in mine  # $LEDGER:ALL
    rows = account_summary(ib, "Pair", "NetLiquidation,$LEDGER,$LEDGER:EUR,Cushion,Unknown")
    assert rows == [
        tuple(r)
        for r in valuation.summary(
            book, CATALOG, NOW, SUBS[:2], "NetLiquidation,$LEDGER,$LEDGER:EUR,Cushion,Unknown"
        )
    ]
    assert {(a, c) for a, t, _, c in rows if t == "CashBalance"} == {
        (SUBS[0], "BASE"), (SUBS[0], "EUR"), (SUBS[1], "BASE"),
    }  # fmt: skip


def test_a_third_account_summary_gets_322_until_one_is_cancelled(fa_gateway, connect):
    ib = connect(fa_gateway)
    first = ib.client.getReqId()
    account_summary(ib, "All", "NetLiquidation", first)
    account_summary(ib, "Pair", "NetLiquidation")
    code, text = request_error(ib, ib.reqAccountSummaryAsync())
    assert code == 322 and text.endswith(LIMIT_TEXT)
    ib.client.cancelAccountSummary(first)
    types = [(a, "AccountType", "INDIVIDUAL", "") for a in SUBS]
    assert account_summary(ib, "All", "AccountType") == types
    code, _ = request_error(ib, ib.reqAccountSummaryAsync())
    assert code == 322


def test_account_summary_slots_belong_to_the_login_and_free_with_the_connection(
    fa_gateway, connect
):
    first, second = connect(fa_gateway), connect(fa_gateway)
    account_summary(first, "All", "NetLiquidation")
    account_summary(second, "All", "NetLiquidation")
    code, _ = request_error(second, second.reqAccountSummaryAsync())
    assert code == 322  # two open in all, whichever client holds them
    client_id = first.client.clientId
    first.disconnect()
    poll_until(
        lambda: fa_gateway.call(lambda: client_id not in fa_gateway.gateway.clients),
        "the gateway noticed the disconnect",
    )
    assert account_summary(second, "All", "AccountType")  # the closed connection's slot is free


def test_fa_pnl_per_account_group_and_contract(fa_gateway, connect):
    book = book_of(FA_MASTER)
    ib = connect(fa_gateway)
    per_account = {a: ib.reqPnL(a) for a in [*SUBS, "All", "Pair"]}
    ib_until(ib, lambda: all(not math.isnan(p.dailyPnL) for p in per_account.values()))
    for account, p in per_account.items():
        want = valuation.pnl(book, CATALOG, NOW, book.account_ids(account))
        assert (p.dailyPnL, p.unrealizedPnL, p.realizedPnL) == want
    singles = [ib.reqPnLSingle(p["account"], "", p["con_id"]) for p in FA_MASTER["positions"]]
    ib_until(ib, lambda: all(not math.isnan(p.dailyPnL) for p in singles))
    for p in singles:
        want = valuation.pnl_single(book, CATALOG, NOW, [p.account], p.conId)
        assert (p.position, p.dailyPnL, p.unrealizedPnL, p.realizedPnL, p.value) == want
    both = ib.reqPnLSingle("Pair", "", AAPL)  # 60 + 40 AAPL across the group
    ib_until(ib, lambda: not math.isnan(both.dailyPnL))
    assert both.position == 100
    # the corrected short sale: the daily P&L runs from the corrected price, 452.5
    msft = next(p for p in singles if p.conId == MSFT)
    assert msft.dailyPnL == msft.unrealizedPnL


def test_pnl_single_for_a_contract_not_held_gets_no_reply(fa_gateway, connect):
    ib = connect(fa_gateway)
    errors: list = []
    ib.errorEvent += lambda *args: errors.append(args)
    unknown = ib.reqPnLSingle(SUBS[0], "", 999_999_999)
    not_held = ib.reqPnLSingle(SUBS[2], "", AAPL)  # AAPL is in the other two accounts
    held = ib.reqPnLSingle(SUBS[0], "", AAPL)
    ib_until(ib, lambda: not math.isnan(held.dailyPnL))
    sync(ib)
    assert math.isnan(unknown.dailyPnL) and math.isnan(unknown.value)
    assert math.isnan(not_held.dailyPnL)
    assert errors == []  # no error either: nothing at all


def test_family_codes(fa_gateway, single_gateway, connect):
    for gw, scenario in ((fa_gateway, FA_MASTER), (single_gateway, SINGLE)):
        ib = connect(gw)
        got: list = []
        ib.wrapper.familyCodes = got.extend
        ib.client.reqFamilyCodes()
        ib_until(ib, lambda got=got: bool(got))
        codes = [(c.accountID, c.familyCodeStr) for c in got]
        assert codes == valuation.family_codes(book_of(scenario))
    assert codes == [("DU123456", "DU123456A")]


# ----------------------------------------------------------------------------- pure valuation
def test_valuation_is_deterministic_and_ledgers_add_up():
    for scenario in (SINGLE, FA_MASTER):
        book = book_of(scenario)
        again = Catalog(ManualClock(NOW))
        assert valuation.portfolio_rows(book, CATALOG, NOW) == valuation.portfolio_rows(
            book_of(scenario), again, NOW
        )
        for account in book.accounts:
            rows = valuation.account_values(book, CATALOG, NOW, account.id)
            texts = ("Currency", "RealCurrency", "AccountOrGroup")
            value = {
                (r.key, r.currency): float(r.value)
                for r in rows
                if r.currency and r.key not in texts
            }
            base = value[("NetLiquidationByCurrency", "BASE")]
            parts = (
                sum(
                    value[(k, "BASE")]
                    for k in ("TotalCashBalance", "StockMarketValue", "OptionMarketValue")
                )
                + value[("FxCashBalance", "BASE")]
            )
            assert base == pytest.approx(parts, abs=0.011)
            converted = sum(
                amount * value[("ExchangeRate", c)] for c, amount in account.cash.items()
            )
            assert value[("CashBalance", "BASE")] == pytest.approx(converted, abs=0.011)
            for currency, amount in account.cash.items():
                assert value[("CashBalance", currency)] == amount


def test_value_texts_read_back_exactly():
    assert valuation.value_text(1) == "1.00"
    assert valuation.value_text(0.0064) == "0.0064"
    assert valuation.value_text(-0.0) == "0.00"
    assert valuation.value_text(12345.6) == "12345.60"
    for x in (0.1 + 0.2, 1.11916, 13111.8, -5677.65, 1e-5, 272000.0):
        assert float(valuation.number_text(x)) == x
    assert valuation.number_text(60.0) == "60" and valuation.number_text(-0.0) == "0"


# ----------------------------------------------------------------------------- official client
class AccountsApp(IBApiApp):
    """The harness with the account callbacks recorded too."""

    def position(self, account, contract, position, avgCost) -> None:
        self._put("positions", "position", account, contract, position, avgCost)

    def positionEnd(self) -> None:
        self._put("positions", "positionEnd")

    def accountSummary(self, reqId, account, tag, value, currency) -> None:
        self._put(reqId, "accountSummary", account, tag, value, currency)

    def accountSummaryEnd(self, reqId) -> None:
        self._put(reqId, "accountSummaryEnd")

    def pnlSingle(self, reqId, pos, dailyPnL, unrealizedPnL, realizedPnL, value) -> None:
        self._put(reqId, "pnlSingle", pos, dailyPnL, unrealizedPnL, realizedPnL, value)

    def familyCodes(self, familyCodes) -> None:
        self._put("familyCodes", "familyCodes", familyCodes)


def test_official_client_positions_summary_pnl_and_family_codes(fa_gateway):
    book = book_of(FA_MASTER)
    app = AccountsApp().start(fa_gateway.port)
    try:
        app.reqPositions()
        events = []
        while not events or events[-1].name != "positionEnd":
            events.append(app.next_event("positions"))
        got = {(a, c.conId): (pos, cost) for a, c, pos, cost in (e.args for e in events[:-1])}
        assert got == {
            (p["account"], p["con_id"]): (Decimal(str(p["quantity"])), p["avg_cost"])
            for p in FA_MASTER["positions"]
        }

        req_id = app.next_req_id()
        tags = "AccountType,NetLiquidation,BuyingPower,$LEDGER:ALL"
        app.reqAccountSummary(req_id, "All", tags)
        reply = app.collect(req_id, "accountSummaryEnd")
        assert not reply.errors
        assert reply.all("accountSummary") == [
            tuple(r) for r in valuation.summary(book, CATALOG, NOW, SUBS, tags)
        ]

        req_id = app.next_req_id()
        app.reqPnLSingle(req_id, SUBS[1], "", SPY_CALL)
        pos, *rest = app.collect(req_id, "pnlSingle").one("pnlSingle")
        want = valuation.pnl_single(book, CATALOG, NOW, [SUBS[1]], SPY_CALL)
        assert (float(pos), *rest) == tuple(want)

        app.reqFamilyCodes()
        [codes] = app.next_event("familyCodes").args
        assert [(c.accountID, c.familyCodeStr) for c in codes] == valuation.family_codes(book)
        app.sync()
        assert app.decode_failures == []
    finally:
        app.close()
