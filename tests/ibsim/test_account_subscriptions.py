"""Account subscriptions that go on, as IB's do, through a real socket with ib_async: account
updates, multi and summary after each fill and every refresh interval, pnl and pnlSingle every
second, each until its cancel; and positions valued at the quote the client sees.

The gateway's clock is a ManualClock the test moves, so "every interval" is a step of the test,
never a wait on the wall clock. Expected values come from `ibsim.accounts.valuation` on the
gateway's own book at the clock's now."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from ib_async import IB, Contract, MarketOrder

from ibsim.accounts import valuation
from ibsim.accounts.book import UNSET, Book
from ibsim.clock import ManualClock
from ibsim.server import GatewayThread
from tests.ibsim.test_accounts import AccountsApp
from tests.kit.gateway import sync
from tests.kit.scenarios import AAPL, ESU4, MSFT, SINGLE
from tests.kit.waiting import ib_until

pytestmark = pytest.mark.usefixtures("ib_async_decoded_everything")

ACCOUNT = "DU123456"
REFRESH = 60.0  # the tests' account_update_interval, in gateway seconds


@pytest.fixture
def gw(make_gateway, clock: ManualClock) -> GatewayThread:
    """The single paper account, refreshed every REFRESH gateway seconds, P&L every second."""
    return make_gateway(
        book=Book.from_scenario(SINGLE),
        clock=clock,
        stream_interval=0.02,
        account_update_interval=REFRESH,
        pnl_interval=1.0,
    )


def record(ib: IB, *names: str) -> list[tuple[str, tuple]]:
    """Every call of these ib_async wrapper callbacks from now on, in order (still handled)."""
    seen: list[tuple[str, tuple]] = []
    for name in names:
        original = getattr(ib.wrapper, name)

        def wrapped(*args, name=name, original=original) -> None:
            seen.append((name, args))
            original(*args)

        setattr(ib.wrapper, name, wrapped)
    return seen


def count(seen: list[tuple[str, tuple]], name: str, req_id: int | None = None) -> int:
    return sum(1 for n, args in seen if n == name and (req_id is None or args[0] == req_id))


def on_gateway(gw: GatewayThread, clock: ManualClock, fn: Callable[..., Any], *args) -> Any:
    """`fn(book, catalog, now, *args)` on the gateway's loop: what the gateway sends now."""
    return gw.call(lambda: fn(gw.gateway.book, gw.gateway.catalog, clock.now(), *args))


def fill(ib: IB, con_id: int, action: str, quantity: float) -> None:
    trade = ib.placeOrder(
        Contract(conId=con_id, exchange="SMART"), MarketOrder(action, quantity, account=ACCOUNT)
    )
    ib_until(ib, trade.isDone, "the market order's fill")


# ----------------------------------------------------------------------------- one price source
def test_the_portfolio_is_valued_at_the_quote_mid_the_client_sees(gw, clock, connect):
    ib = connect(gw)
    ends = record(ib, "accountDownloadEnd")
    ticker = ib.reqMktData(Contract(conId=AAPL, exchange="SMART"))
    for step in range(2):
        ib_until(ib, lambda: not math.isnan(ticker.bid) and not math.isnan(ticker.ask))
        sync(ib)  # the quotes and the refresh of this second are both in
        [item] = [i for i in ib.portfolio() if i.contract.conId == AAPL]
        assert item.marketPrice == pytest.approx((ticker.bid + ticker.ask) / 2, abs=1e-9)
        assert item.marketValue == round(100 * item.marketPrice, 2)
        if step == 0:  # the refresh REFRESH seconds on values AAPL at that second's quote
            clock.advance(REFRESH)
            ib_until(ib, lambda: count(ends, "accountDownloadEnd") == 1, "the refresh")


# ----------------------------------------------------------------------------- reqAccountUpdates
def test_a_fill_sends_the_values_and_the_changed_portfolio_row_again(gw, clock, connect):
    ib = connect(gw)  # one account: connect subscribed to its account updates
    seen = record(ib, "updateAccountValue", "updatePortfolio", "accountDownloadEnd")
    fill(ib, MSFT, "BUY", 10)
    ib_until(ib, lambda: count(seen, "accountDownloadEnd") == 1, "the account after the fill")
    names = [n for n, _ in seen]
    values = on_gateway(gw, clock, valuation.account_values, ACCOUNT)
    assert names == ["updateAccountValue"] * len(values) + ["updatePortfolio", "accountDownloadEnd"]
    [(_, (contract, position, *_))] = [s for s in seen if s[0] == "updatePortfolio"]
    assert (contract.conId, position) == (MSFT, 10)

    got = {(v.account, v.tag, v.value, v.currency) for v in ib.accountValues()}
    assert got == {(ACCOUNT, *v) for v in values}
    items = {i.contract.conId: i for i in ib.portfolio()}
    for row in on_gateway(gw, clock, valuation.portfolio_rows):
        item = items[row.con_id]
        assert (item.position, item.marketPrice, item.marketValue, item.averageCost) == (
            row.quantity, row.market_price, row.market_value, row.avg_cost,
        )  # fmt: skip

    fill(ib, AAPL, "SELL", 100)  # closes AAPL: IB keeps sending the row, with quantity 0
    ib_until(ib, lambda: count(seen, "accountDownloadEnd") == 2, "the account after the close")
    [(contract, position, _, value, _, unrealized, realized, _)] = [
        args for n, args in seen[-3:] if n == "updatePortfolio"
    ]
    assert (contract.conId, position, value, unrealized) == (AAPL, 0, 0, 0)
    assert realized == next(
        r.realized_pnl for r in on_gateway(gw, clock, valuation.portfolio_rows) if r.con_id == AAPL
    )
    assert AAPL not in {i.contract.conId for i in ib.portfolio()}  # ib_async drops a closed row


def test_account_updates_refresh_every_interval_until_unsubscribed(gw, clock, connect):
    book, rows = Book.from_scenario(SINGLE), len(SINGLE["positions"])
    ib = connect(gw)
    seen = record(
        ib, "updateAccountValue", "updatePortfolio", "accountDownloadEnd", "accountUpdateMultiEnd"
    )
    clock.advance(REFRESH - 1)
    sync(ib)
    assert seen == []  # not due yet
    clock.advance(1)
    ib_until(ib, lambda: count(seen, "accountDownloadEnd") == 1, "the refresh")
    assert count(seen, "updatePortfolio") == rows
    assert count(seen, "updateAccountValue") == len(
        valuation.account_values(book, gw.gateway.catalog, clock.now(), ACCOUNT)
    )

    ib.client.reqAccountUpdates(False, ACCOUNT)
    sync(ib)
    multi_ends = count(seen, "accountUpdateMultiEnd")
    clock.advance(REFRESH)
    # connect's reqAccountUpdatesMulti still refreshes: once it has, the pump has run
    ib_until(ib, lambda: count(seen, "accountUpdateMultiEnd") > multi_ends, "the multi refresh")
    sync(ib)
    assert count(seen, "accountDownloadEnd") == 1
    assert count(seen, "updatePortfolio") == rows


# ----------------------------------------------------------------------------- summary and multi
def test_summary_and_multi_refresh_after_a_fill_and_stop_after_cancel(gw, clock, connect):
    ib = connect(gw)
    seen = record(
        ib, "accountSummary", "accountSummaryEnd", "accountUpdateMulti", "accountUpdateMultiEnd",
        "accountDownloadEnd",
    )  # fmt: skip
    summary_id, multi_id = ib.client.getReqId(), ib.client.getReqId()
    tags = "NetLiquidation,GrossPositionValue,$LEDGER"
    ib.client.reqAccountSummary(summary_id, "All", tags)
    ib.client.reqAccountUpdatesMulti(multi_id, ACCOUNT, "", False)
    ib_until(ib, lambda: count(seen, "accountSummaryEnd", summary_id) == 1)
    ib_until(ib, lambda: count(seen, "accountUpdateMultiEnd", multi_id) == 1)
    del seen[:]

    fill(ib, MSFT, "BUY", 10)
    ib_until(ib, lambda: count(seen, "accountSummaryEnd", summary_id) == 1, "the summary")
    ib_until(ib, lambda: count(seen, "accountUpdateMultiEnd", multi_id) == 1, "the multi")
    summary = [args[1:] for n, args in seen if n == "accountSummary" and args[0] == summary_id]
    assert summary == [tuple(r) for r in on_gateway(gw, clock, valuation.summary, [ACCOUNT], tags)]
    multi = [args[1:] for n, args in seen if n == "accountUpdateMulti" and args[0] == multi_id]
    values = on_gateway(gw, clock, valuation.account_values, ACCOUNT)
    assert multi == [(ACCOUNT, "", *v) for v in values]

    clock.advance(REFRESH)  # and every interval
    ib_until(ib, lambda: count(seen, "accountSummaryEnd", summary_id) == 2, "the summary")
    ib_until(ib, lambda: count(seen, "accountUpdateMultiEnd", multi_id) == 2, "the multi")

    ib.client.cancelAccountSummary(summary_id)
    ib.client.cancelAccountUpdatesMulti(multi_id)
    sync(ib)
    ends = count(seen, "accountDownloadEnd")
    fill(ib, MSFT, "BUY", 5)
    clock.advance(REFRESH)
    # connect's reqAccountUpdates goes on: its end after the fill and after the refresh
    ib_until(ib, lambda: count(seen, "accountDownloadEnd") == ends + 2, "the account updates")
    sync(ib)
    assert count(seen, "accountSummaryEnd", summary_id) == 2
    assert count(seen, "accountUpdateMultiEnd", multi_id) == 2


# ----------------------------------------------------------------------------- P&L
def test_pnl_and_pnl_single_arrive_every_second_until_cancelled(gw, clock, connect):
    ib = connect(gw)
    seen = record(ib, "pnl", "pnlSingle")
    pnl = ib.reqPnL(ACCOUNT)
    aapl = ib.reqPnLSingle(ACCOUNT, "", AAPL)
    es = ib.reqPnLSingle(ACCOUNT, "", ESU4)
    ib_until(ib, lambda: count(seen, "pnl") == 1 and count(seen, "pnlSingle") == 2)
    for k in range(2, 6):
        clock.advance(1)
        ib_until(ib, lambda k=k: count(seen, "pnl") == k, f"pnl number {k}")
        ib_until(ib, lambda k=k: count(seen, "pnlSingle") == 2 * k, f"pnlSingle round {k}")
        sync(ib)
        want = on_gateway(gw, clock, valuation.pnl, [ACCOUNT])
        assert (pnl.dailyPnL, pnl.unrealizedPnL, pnl.realizedPnL) == want
        want = on_gateway(gw, clock, valuation.pnl_single, [ACCOUNT], AAPL)
        assert (aapl.position, aapl.dailyPnL, aapl.unrealizedPnL, aapl.realizedPnL,
                aapl.value) == want  # fmt: skip

    ib.cancelPnL(ACCOUNT)
    ib.cancelPnLSingle(ACCOUNT, "", AAPL)
    sync(ib)
    es_id = ib.wrapper.pnlSingleKey2ReqId[(ACCOUNT, "", ESU4)]
    before = len(seen)
    clock.advance(3)
    ib_until(ib, lambda: count(seen[before:], "pnlSingle", es_id) == 1, "the ES pnlSingle")
    sync(ib)
    assert [n for n, args in seen[before:] if args[0] != es_id] == []
    assert es.position == 2


def test_after_a_fill_the_next_pnl_single_shows_the_position(gw, clock, connect):
    ib = connect(gw)
    aapl = ib.reqPnLSingle(ACCOUNT, "", AAPL)
    ib_until(ib, lambda: aapl.position == 100)
    fill(ib, AAPL, "SELL", 40)
    clock.advance(1)
    ib_until(ib, lambda: aapl.position == 60, "the pnlSingle after the fill")
    fill(ib, AAPL, "SELL", 60)
    clock.advance(1)
    ib_until(ib, lambda: aapl.position == 0, "the pnlSingle after the close")
    sync(ib)
    want = on_gateway(gw, clock, valuation.pnl_single, [ACCOUNT], AAPL)
    got = (aapl.position, aapl.dailyPnL, aapl.unrealizedPnL, aapl.realizedPnL, aapl.value)
    assert got == want
    # closed: no value, no unrealized P&L (IB's "unset"), the day's realized P&L stays
    assert (aapl.value, aapl.unrealizedPnL) == (0, UNSET)
    assert aapl.realizedPnL != 0


# ----------------------------------------------------------------------------- official client
def test_official_client_decodes_every_refresh(gw, clock):
    app = AccountsApp().start(gw.port)
    try:
        summary_id, pnl_id = app.next_req_id(), app.next_req_id()
        tags = "NetLiquidation,$LEDGER"
        app.reqAccountSummary(summary_id, "All", tags)
        app.reqPnLSingle(pnl_id, ACCOUNT, "", AAPL)
        first = app.collect(summary_id, "accountSummaryEnd").all("accountSummary")
        app.collect(pnl_id, "pnlSingle")
        clock.advance(REFRESH)
        again = app.collect(summary_id, "accountSummaryEnd").all("accountSummary")
        want = on_gateway(gw, clock, valuation.summary, [ACCOUNT], tags)
        assert again == [tuple(r) for r in want]
        assert len(again) == len(first)
        pos, *rest = app.collect(pnl_id, "pnlSingle").one("pnlSingle")
        want = on_gateway(gw, clock, valuation.pnl_single, [ACCOUNT], AAPL)
        assert (float(pos), *rest) == tuple(want)
        app.sync()
        assert app.decode_failures == []
    finally:
        app.close()
