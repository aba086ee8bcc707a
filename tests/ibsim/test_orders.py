"""The order engine of the embedded gateway, seen through unmodified ib_async over a real socket
(and once through the official ibapi client): order types against the synthetic market, IB's
states, fills, commissions, modifications, cancels, brackets, OCA groups, whatIf, FA allocation,
and fills that happen while the client is away.

The clock is a ManualClock at NOW (2024-07-10 11:00 New York) unless a test moves it; expected
prices come from `ibsim.market.quotes.quote_at`, the market the engine fills against.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from ib_async import (
    IB,
    LimitOrder,
    MarketOrder,
    Order,
    PriceCondition,
    Stock,
    StopOrder,
    TagValue,
    TimeCondition,
    Trade,
)
from ibapi import order_condition
from ibapi.order import Order as ApiOrder
from ibapi.tag_value import TagValue as ApiTagValue

from ibsim.accounts.book import Book
from ibsim.clock import ManualClock, ShiftedClock
from ibsim.market.catalog import Catalog
from ibsim.market.quotes import Quote, quote_at
from ibsim.orders import allocation
from ibsim.server import GatewayThread
from ibsim.server import framing as wire
from tests.kit.gateway import NOW, Errors
from tests.kit.ibapi_harness import TradesApp
from tests.kit.ibapi_harness import stock as ibapi_stock
from tests.kit.rawclient import next_message, read_frame
from tests.kit.scenarios import AAPL, FA_MASTER, SINGLE, SUBS
from tests.kit.waiting import ib_until, poll_until

WAIT = 5.0  # seconds: the most any answer may take
T0 = int(NOW.timestamp())
CLOSE = int(datetime(2024, 7, 10, 20, 0, tzinfo=UTC).timestamp())  # 16:00 New York
APPLE = Catalog(ManualClock(NOW)).by_con_id(AAPL)
MakeGateway = Callable[..., GatewayThread]
pytestmark = pytest.mark.usefixtures("ib_async_decoded_everything")


# ----------------------------------------------------------------------------- helpers
def quote(at: int) -> Quote:
    assert APPLE is not None
    return quote_at(APPLE, at)


def first_second(predicate: Callable[[Quote], bool], start: int = T0, step: int = 10) -> int:
    """The first second from `start` (every `step` s, in the session) whose quote satisfies."""
    for at in range(start, CLOSE, step):
        if predicate(quote(at)):
            return at
    raise AssertionError("no second of the session satisfies the predicate")


def advance_to(gw: GatewayThread, ib: IB, at: int) -> None:
    """Move the gateway's clock to `at` and let one evaluation run there."""
    clock = gw.gateway.clock
    clock.advance(at - clock.now().timestamp())
    gw.call(gw.gateway.engine.evaluate)
    ib.reqCurrentTime()  # a round trip: what the evaluation sent has arrived


def statuses(trade: Trade) -> list[str]:
    """The distinct states of a trade's log, in order."""
    out: list[str] = []
    for entry in trade.log:
        if not out or out[-1] != entry.status:
            out.append(entry.status)
    return out


APPLE_SMART = Stock(conId=AAPL, exchange="SMART")


# ----------------------------------------------------------------------------- market orders
def test_a_market_buy_fills_at_the_ask_with_ibs_states(single_gateway, connect):
    ib = connect(single_gateway)
    trade = ib.placeOrder(APPLE_SMART, MarketOrder("BUY", 100, orderRef="ibw-mkt"))
    ib_until(ib, trade.isDone)
    assert statuses(trade) == ["PendingSubmit", "PreSubmitted", "Submitted", "Filled"]
    s, ask = trade.orderStatus, quote(T0).ask
    assert (s.status, s.filled, s.remaining, s.avgFillPrice, s.lastFillPrice) == (
        "Filled", 100.0, 0.0, ask, ask
    )  # fmt: skip
    assert s.permId == trade.order.permId > 0
    (fill,) = trade.fills
    ex = fill.execution
    assert (ex.side, ex.shares, ex.price, ex.acctNumber) == ("BOT", 100.0, ask, "DU123456")
    assert (ex.permId, ex.orderRef, ex.clientId) == (s.permId, "ibw-mkt", ib.client.clientId)
    assert ex.time == NOW
    assert ex.execId.endswith(".01") and ex.execId.startswith("0000e0d5.")
    ib_until(ib, lambda: fill.commissionReport.commission > 0)
    assert fill.commissionReport.commission == 1.0  # 100 x 0.005, at least 1.00
    assert fill.commissionReport.currency == "USD"


def test_a_large_order_fills_at_most_the_displayed_size_each_second(single_gateway, connect):
    ib = connect(single_gateway)
    trade = ib.placeOrder(APPLE_SMART, MarketOrder("BUY", 20_000))
    ib_until(ib, lambda: len(trade.fills) == 1)
    gw_evaluations = 0
    while not trade.isDone() and gw_evaluations < 30:
        advance_to(single_gateway, ib, int(single_gateway.gateway.clock.now().timestamp()) + 1)
        gw_evaluations += 1
    assert trade.orderStatus.status == "Filled"
    sizes = [f.execution.shares for f in trade.fills]
    seconds = [int(f.execution.time.timestamp()) for f in trade.fills]
    assert len(sizes) > 2 and sum(sizes) == 20_000
    for size, at in zip(sizes[:-1], seconds[:-1], strict=True):
        assert size == quote(at).ask_size  # the whole displayed size, one fill per second
    assert [f.execution.cumQty for f in trade.fills][-1] == 20_000


def test_a_sell_takes_the_bid(single_gateway, connect):
    ib = connect(single_gateway)
    trade = ib.placeOrder(APPLE_SMART, MarketOrder("SELL", 50))
    ib_until(ib, trade.isDone)
    assert trade.fills[0].execution.price == quote(T0).bid
    assert trade.fills[0].execution.side == "SLD"


# ----------------------------------------------------------------------------- limit and stop
def test_a_limit_below_the_market_waits_until_the_market_crosses(single_gateway, connect):
    ib = connect(single_gateway)
    target = first_second(lambda q: q.ask < quote(T0).ask - 0.30, step=30)
    limit = quote(target).ask
    trade = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", 100, limit))
    ib_until(ib, lambda: trade.orderStatus.status == "Submitted")
    advance_to(single_gateway, ib, T0)  # an evaluation at NOW: the ask is above the limit
    assert trade.orderStatus.status == "Submitted" and not trade.fills
    advance_to(single_gateway, ib, target)
    ib_until(ib, trade.isDone)
    assert trade.fills[0].execution.price == limit


def test_a_stop_is_presubmitted_until_the_last_price_crosses_it(single_gateway, connect):
    ib = connect(single_gateway)
    target = first_second(lambda q: q.last <= quote(T0).last - 0.30, step=30)
    stop = round(quote(target).last, 2)
    trade = ib.placeOrder(APPLE_SMART, StopOrder("SELL", 100, stop))
    ib_until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    advance_to(single_gateway, ib, T0)  # an evaluation at NOW: the last is above the stop
    assert trade.orderStatus.status == "PreSubmitted"
    advance_to(single_gateway, ib, target)
    ib_until(ib, trade.isDone)
    assert statuses(trade)[-2:] == ["Submitted", "Filled"]
    assert trade.fills[0].execution.price == quote(target).bid  # elected: a market sell


def test_a_trailing_stop_follows_the_market_then_triggers(single_gateway, connect):
    ib = connect(single_gateway)
    amount = 0.20
    order = Order(action="SELL", totalQuantity=100, orderType="TRAIL", auxPrice=amount)
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    stop, at = round(quote(T0).last - amount, 2), T0
    while True:  # walk the clock: the stop ratchets up with the last price, never down
        at += 15
        q = quote(at)
        if q.last <= stop:
            break
        stop = max(stop, round(q.last - amount, 2))
        advance_to(single_gateway, ib, at)
        assert trade.orderStatus.status == "PreSubmitted"
    # ib_async keeps its own Order for its own trades: another client sees the stop IB keeps
    seen = {t.order.permId: t.order for t in connect(single_gateway).reqAllOpenOrders()}
    assert seen[trade.order.permId].trailStopPrice == pytest.approx(stop)
    advance_to(single_gateway, ib, at)
    ib_until(ib, trade.isDone)
    assert trade.fills[0].execution.price == quote(at).bid


def test_a_market_on_close_order_executes_at_the_close(single_gateway, connect):
    ib = connect(single_gateway)
    trade = ib.placeOrder(APPLE_SMART, Order(action="BUY", totalQuantity=300, orderType="MOC"))
    ib_until(ib, lambda: trade.orderStatus.status == "Submitted")
    advance_to(single_gateway, ib, CLOSE - 60)
    assert trade.orderStatus.status == "Submitted"
    advance_to(single_gateway, ib, CLOSE + 5)
    ib_until(ib, trade.isDone)
    (fill,) = trade.fills
    assert fill.execution.price == quote(CLOSE - 1).last
    assert fill.execution.shares == 300  # the auction takes the whole order
    assert fill.execution.time == datetime.fromtimestamp(CLOSE, UTC)


def test_a_limit_on_close_outside_its_limit_is_cancelled_at_the_close(single_gateway, connect):
    ib = connect(single_gateway)
    limit = round(quote(CLOSE - 1).last - 5, 2)
    order = Order(action="BUY", totalQuantity=100, orderType="LOC", lmtPrice=limit)
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, lambda: trade.orderStatus.status == "Submitted")
    advance_to(single_gateway, ib, CLOSE + 5)
    ib_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Cancelled" and not trade.fills


def test_midprice_fills_at_the_mid_on_the_tick_grid(single_gateway, connect):
    ib = connect(single_gateway)
    at = first_second(lambda q: round(q.ask - q.bid, 2) == 0.02)
    advance_to(single_gateway, ib, at)
    order = Order(action="BUY", totalQuantity=100, orderType="MIDPRICE", lmtPrice=500.0)
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, trade.isDone)
    assert trade.fills[0].execution.price == pytest.approx(quote(at).mid)


def test_relative_is_pegged_to_the_bid_and_fills_when_a_trade_prints_there(single_gateway, connect):
    ib = connect(single_gateway)
    order = Order(action="BUY", totalQuantity=100, orderType="REL", auxPrice=0.01)
    at = first_second(lambda q: q.last_size > 0 and q.last <= q.bid + 0.01 < q.ask, step=1)
    advance_to(single_gateway, ib, at)
    trade = ib.placeOrder(APPLE_SMART, order)  # a trade prints at the peg in this second
    ib_until(ib, trade.isDone)
    fill, q = trade.fills[0].execution, quote(at)
    assert fill.price == round(q.bid + 0.01, 2)  # inside the spread: it did not take the ask
    assert fill.shares == min(100, q.last_size)


@pytest.mark.parametrize("algo", ["Twap", "Vwap"])
def test_twap_and_vwap_fill_in_slices_over_their_window(single_gateway, connect, algo):
    ib = connect(single_gateway)
    start, end = "20240710-15:00:00", "20240710-15:10:00"
    params = [TagValue("startTime", start), TagValue("endTime", end)]
    order = MarketOrder("BUY", 1_000, algoStrategy=algo, algoParams=params)
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, lambda: trade.orderStatus.status == "Submitted")
    for minute in range(1, 11):
        advance_to(single_gateway, ib, T0 + 60 * minute)
        assert trade.orderStatus.filled == 100 * minute  # on the straight line to 1,000
    assert trade.orderStatus.status == "Filled"
    assert len(trade.fills) == 10
    (done,) = [t for t in ib.reqCompletedOrders(False) if t.order.permId == trade.order.permId]
    assert done.order.algoStrategy == algo
    assert [(p.tag, p.value) for p in done.order.algoParams] == [
        ("startTime", start), ("endTime", end)
    ]  # fmt: skip


def test_on_a_running_clock_the_engine_fills_a_twap_by_itself(make_gateway, connect):
    """Gateway time runs 60 times real time: the engine's own loop slices the order."""
    clock = ShiftedClock(NOW, speed=60)
    gw = make_gateway(book=Book.from_scenario(SINGLE), clock=clock, algo_span=120)
    ib = connect(gw)
    placed = clock.now().replace(microsecond=0)
    trade = ib.placeOrder(APPLE_SMART, MarketOrder("BUY", 600, algoStrategy="Twap"))
    ib_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Filled" and trade.orderStatus.filled == 600
    assert len(trade.fills) > 2
    times = [f.execution.time for f in trade.fills]
    # Sliced along the span: the first slices before its end, the last one not before it (a
    # slow machine only makes the engine's loop, and so the last slice, later).
    end = placed + timedelta(seconds=120)
    assert times == sorted(times) and times[0] < end <= times[-1] + timedelta(seconds=1)


def test_adaptive_works_as_its_limit_order(single_gateway, connect):
    ib = connect(single_gateway)
    params = [TagValue("adaptivePriority", "Normal")]
    limit = quote(T0).ask
    trade = ib.placeOrder(
        APPLE_SMART, LimitOrder("BUY", 100, limit, algoStrategy="Adaptive", algoParams=params)
    )
    ib_until(ib, trade.isDone)
    assert trade.fills[0].execution.price == limit


# ----------------------------------------------------------------------------- modify, cancel
def far_below() -> float:
    return round(quote(T0).bid - 20, 2)


def test_a_modified_limit_fills(single_gateway, connect):
    ib = connect(single_gateway)
    order = LimitOrder("BUY", 100, far_below(), orderRef="ibw-mod")
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, lambda: trade.orderStatus.status == "Submitted")
    perm_id = trade.order.permId
    order.lmtPrice = quote(T0).ask
    ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Filled" and trade.order.permId == perm_id
    assert "Modify" in [e.message for e in trade.log]
    assert trade.fills[0].execution.price == quote(T0).ask
    assert trade.fills[0].execution.orderRef == "ibw-mod"


def test_a_cancel_ends_cancelled_with_202(single_gateway, connect):
    ib = connect(single_gateway)
    seen = Errors(ib).seen
    trade = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", 100, far_below()))
    ib_until(ib, lambda: trade.orderStatus.status == "Submitted")
    ib.cancelOrder(trade.order)
    ib_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    ib_until(ib, lambda: (trade.order.orderId, 202) in [(r, c) for r, c, _ in seen])
    assert [t for t in ib.reqAllOpenOrders() if t.order.permId == trade.order.permId] == []
    done = {t.order.permId: t for t in ib.reqCompletedOrders(False)}
    assert done[trade.order.permId].orderStatus.status == "Cancelled"


def test_cancelling_an_unknown_or_filled_order_gets_ibs_errors(single_gateway, connect):
    ib = connect(single_gateway)
    seen = Errors(ib).seen
    ib.client.cancelOrder(9_999, "")
    trade = ib.placeOrder(APPLE_SMART, MarketOrder("BUY", 100))
    ib_until(ib, trade.isDone)
    ib.client.cancelOrder(trade.order.orderId, "")
    ib_until(ib, lambda: len(seen) == 2)
    assert seen == [
        (9_999, 10147, "OrderId 9999 that needs to be cancelled is not found."),
        (trade.order.orderId, 10148,
         f"OrderId {trade.order.orderId} that needs to be cancelled cannot be cancelled, "
         "state: Filled."),
    ]  # fmt: skip
    assert trade.orderStatus.status == "Filled"


def test_modifying_a_filled_order_gets_104(single_gateway, connect):
    ib = connect(single_gateway)
    seen = Errors(ib).seen
    order = MarketOrder("BUY", 100)
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, trade.isDone)
    order.totalQuantity = 200
    ib.client.placeOrder(order.orderId, APPLE_SMART, order)  # ib_async itself refuses
    ib_until(ib, lambda: bool(seen))
    assert seen[0][:2] == (order.orderId, 104)
    assert trade.orderStatus.filled == 100


def test_a_global_cancel_cancels_every_clients_open_orders(single_gateway, connect):
    ib, other = connect(single_gateway), connect(single_gateway)
    mine = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", 100, far_below()))
    theirs = other.placeOrder(APPLE_SMART, LimitOrder("BUY", 200, far_below()))
    ib_until(ib, lambda: mine.orderStatus.status == "Submitted")
    ib_until(other, lambda: theirs.orderStatus.status == "Submitted")
    ib.reqGlobalCancel()
    ib_until(ib, lambda: mine.orderStatus.status == "Cancelled")
    ib_until(other, lambda: theirs.orderStatus.status == "Cancelled")
    assert ib.reqAllOpenOrders() == []  # the scenario's own open order too


def test_an_order_id_used_before_gets_103_and_the_next_valid_id_moves_past_it(
    single_gateway, connect
):
    ib = connect(single_gateway)
    seen = Errors(ib).seen
    order = LimitOrder("BUY", 100, far_below())
    order.orderId = 50
    ib.placeOrder(APPLE_SMART, order)
    again = LimitOrder("BUY", 100, far_below())
    again.orderId = 40
    duplicate = ib.placeOrder(APPLE_SMART, again)
    ib_until(ib, lambda: bool(seen))
    assert seen[0][:2] == (40, 103)
    assert duplicate.orderStatus.status == "Cancelled"  # ib_async's reading of the error
    assert single_gateway.gateway.next_order_id == 51
    sock = socket.create_connection(("127.0.0.1", single_gateway.port), timeout=WAIT)
    try:  # nextValidId at the next connect follows it
        sock.sendall(b"API\0" + wire.encode_raw(b"v157..178"))
        read_frame(sock)
        sock.sendall(wire.encode([71, 2, 77, ""]))
        assert next_message(sock, "9") == ["9", "1", "51"]
    finally:
        sock.close()


# ----------------------------------------------------------------------------- time in force
def test_ioc_fills_what_is_there_and_cancels_the_rest(single_gateway, connect):
    ib = connect(single_gateway)
    shown = quote(T0).ask_size
    trade = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", shown + 500, quote(T0).ask, tif="IOC"))
    ib_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Cancelled"
    assert trade.orderStatus.filled == shown == sum(f.execution.shares for f in trade.fills)
    missed = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", 100, far_below(), tif="IOC"))
    ib_until(ib, missed.isDone)
    assert missed.orderStatus.status == "Cancelled" and not missed.fills


def test_a_day_order_expires_at_the_close_and_a_gtc_order_stays(single_gateway, connect):
    ib = connect(single_gateway)
    day = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", 100, far_below()))
    gtc = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", 100, far_below(), tif="GTC"))
    ib_until(ib, lambda: gtc.orderStatus.status == "Submitted")
    advance_to(single_gateway, ib, CLOSE + 1)
    ib_until(ib, day.isDone)
    assert day.orderStatus.status == "Cancelled"
    assert gtc.orderStatus.status == "Submitted"


def test_outside_regular_hours_an_order_waits_unless_it_may_trade_there(single_gateway, connect):
    ib = connect(single_gateway)
    seen = Errors(ib).seen
    premarket = int(datetime(2024, 7, 10, 12, 0, tzinfo=UTC).timestamp())  # 08:00 New York
    advance_to(single_gateway, ib, premarket)
    price = quote(premarket).ask
    waiting = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", 100, price))
    extended = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", 100, price, outsideRth=True))
    ib_until(ib, extended.isDone)
    assert extended.fills[0].execution.price == price
    assert waiting.orderStatus.status == "PreSubmitted" and not waiting.fills
    assert any(code == 399 and "09:30:00 US/Eastern" in text for _, code, text in seen)
    advance_to(single_gateway, ib, T0 - 90 * 60 + 1)  # 09:30:01 New York
    ib_until(ib, waiting.isDone)
    assert waiting.orderStatus.status == "Filled"


# ----------------------------------------------------------------------------- brackets, OCA
def test_a_bracket_works_its_children_after_the_parent_fills(single_gateway, connect):
    ib = connect(single_gateway)
    entry = quote(T0).ask
    target = first_second(lambda q: q.bid >= entry + 0.25, step=15)
    take_profit = round(quote(target).bid, 2)
    bracket = ib.bracketOrder("BUY", 100, entry, take_profit, round(entry - 5, 2))
    parent, profit, loss = (ib.placeOrder(APPLE_SMART, o) for o in bracket)
    ib_until(ib, parent.isDone)  # held until the stop loss (transmit) arrived, then filled
    assert parent.orderStatus.status == "Filled"
    ib_until(ib, lambda: profit.orderStatus.status == "Submitted")
    assert loss.orderStatus.status == "PreSubmitted"  # an untriggered stop
    assert profit.orderStatus.parentId == parent.order.orderId
    advance_to(single_gateway, ib, target)
    ib_until(ib, profit.isDone) and ib_until(ib, loss.isDone)
    assert (profit.orderStatus.status, loss.orderStatus.status) == ("Filled", "Cancelled")
    assert profit.fills[0].execution.price == take_profit


def test_children_wait_for_their_parent_and_go_with_it(single_gateway, connect):
    ib = connect(single_gateway)
    bracket = ib.bracketOrder("BUY", 100, far_below(), quote(T0).bid, round(far_below() - 5, 2))
    parent, profit, loss = (ib.placeOrder(APPLE_SMART, o) for o in bracket)
    ib_until(ib, lambda: profit.orderStatus.status == "PreSubmitted")
    advance_to(single_gateway, ib, T0)  # the take-profit is marketable, its parent unfilled
    assert not profit.fills and parent.orderStatus.status == "Submitted"
    ib.cancelOrder(parent.order)
    ib_until(ib, lambda: all(t.isDone() for t in (parent, profit, loss)))
    assert {t.orderStatus.status for t in (parent, profit, loss)} == {"Cancelled"}


def test_a_fill_in_an_oca_group_cancels_the_others(single_gateway, connect):
    ib = connect(single_gateway)
    marketable = LimitOrder("BUY", 100, quote(T0).ask, ocaGroup="g1", ocaType=1)
    resting = LimitOrder("BUY", 100, far_below(), ocaGroup="g1", ocaType=1)
    other = ib.placeOrder(APPLE_SMART, resting)
    ib_until(ib, lambda: other.orderStatus.status == "Submitted")
    first = ib.placeOrder(APPLE_SMART, marketable)
    ib_until(ib, first.isDone) and ib_until(ib, other.isDone)
    assert (first.orderStatus.status, other.orderStatus.status) == ("Filled", "Cancelled")


def test_an_oca_group_of_type_3_reduces_the_others(single_gateway, connect):
    ib = connect(single_gateway)
    resting = ib.placeOrder(
        APPLE_SMART, LimitOrder("BUY", 300, far_below(), ocaGroup="g", ocaType=3)
    )
    ib_until(ib, lambda: resting.orderStatus.status == "Submitted")
    filled = ib.placeOrder(
        APPLE_SMART, LimitOrder("BUY", 100, quote(T0).ask, ocaGroup="g", ocaType=3)
    )
    ib_until(ib, filled.isDone)
    ib_until(ib, lambda: resting.orderStatus.remaining == 200)
    assert resting.orderStatus.status == "Submitted" and resting.order.totalQuantity == 200


# ----------------------------------------------------------------------------- whatIf
def test_what_if_returns_margin_numbers_and_places_nothing(single_gateway, connect):
    ib = connect(single_gateway)
    state = ib.whatIfOrder(APPLE_SMART, LimitOrder("BUY", 100, 200.0))
    assert float(state.initMarginChange) == pytest.approx(100 * 200.0 * 0.25)
    assert float(state.maintMarginChange) == pytest.approx(100 * 200.0 * 0.25)
    before, after = float(state.initMarginBefore), float(state.initMarginAfter)
    assert after == pytest.approx(before + 5_000.0)
    assert state.commission == 1.0 and state.commissionCurrency == "USD"
    assert state.status == "PreSubmitted"
    assert [t.order.orderType for t in ib.reqAllOpenOrders()] == ["LMT"]  # the scenario's only
    assert ib.reqExecutions() and len(ib.reqExecutions()) == 1  # the scenario's fill only


# ----------------------------------------------------------------------------- FA allocation
def fa_fills(trade: Trade) -> dict[str, float]:
    out: dict[str, float] = {}
    for f in trade.fills:
        out[f.execution.acctNumber] = out.get(f.execution.acctNumber, 0.0) + f.execution.shares
    return out


def aapl_positions(ib: IB) -> dict[str, float]:
    return {p.account: p.position for p in ib.reqPositions() if p.contract.conId == AAPL}


def test_an_equal_fa_order_splits_each_fill_over_the_group(fa_gateway, connect):
    ib = connect(fa_gateway)
    before = aapl_positions(ib)
    order = MarketOrder("BUY", 300, faGroup="Everyone", faMethod="Equal", orderRef="ibw-fa-eq")
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, trade.isDone)
    assert trade.orderStatus.filled == 300 and trade.orderStatus.status == "Filled"
    assert fa_fills(trade) == dict.fromkeys(SUBS, 100.0)
    mine = [f for f in ib.reqExecutions() if f.execution.permId == trade.order.permId]
    assert sorted(f.execution.acctNumber for f in mine) == sorted(SUBS)
    assert len({f.execution.execId for f in mine}) == 3
    assert {f.execution.orderRef for f in mine} == {"ibw-fa-eq"}
    after = aapl_positions(ib)
    assert {a: after[a] - before.get(a, 0.0) for a in SUBS} == dict.fromkeys(SUBS, 100.0)


def test_a_large_fa_order_reaches_each_accounts_share_over_partial_fills(fa_gateway, connect):
    ib = connect(fa_gateway)
    trade = ib.placeOrder(
        APPLE_SMART, MarketOrder("BUY", 10_000, faGroup="Everyone", faMethod="Equal")
    )
    ib_until(ib, lambda: bool(trade.fills))
    at = T0
    while not trade.isDone() and at < T0 + 60:
        at += 1
        advance_to(fa_gateway, ib, at)
    assert trade.orderStatus.status == "Filled" and len(trade.fills) > 3
    assert fa_fills(trade) == {SUBS[0]: 3_334.0, SUBS[1]: 3_333.0, SUBS[2]: 3_333.0}


def test_a_netliq_fa_order_splits_by_net_liquidation(fa_gateway, connect):
    ib = connect(fa_gateway)
    gateway = fa_gateway.gateway
    net_liq = fa_gateway.call(
        allocation.account_figures, gateway.book, gateway.catalog, NOW, SUBS, "NetLiquidation"
    )
    trade = ib.placeOrder(APPLE_SMART, MarketOrder("BUY", 100, faGroup="Everyone"))
    ib_until(ib, trade.isDone)
    expected = allocation.split(100, net_liq)
    assert fa_fills(trade) == {a: q for a, q in expected.items() if q}
    assert sum(expected.values()) == 100


def test_a_profile_order_splits_by_its_percentages(fa_gateway, connect):
    ib = connect(fa_gateway)
    trade = ib.placeOrder(APPLE_SMART, MarketOrder("SELL", 100, faGroup="Tilted"))
    ib_until(ib, trade.isDone)
    assert fa_fills(trade) == {SUBS[0]: 50.0, SUBS[1]: 30.0, SUBS[2]: 20.0}
    assert {f.execution.side for f in trade.fills} == {"SLD"}


def test_fa_orders_need_an_allocation_and_an_fa_login(fa_gateway, single_gateway, connect):
    fa, plain = connect(fa_gateway), connect(single_gateway)
    fa_errors, plain_errors = Errors(fa).seen, Errors(plain).seen
    nowhere = fa.placeOrder(APPLE_SMART, MarketOrder("BUY", 100))
    not_fa = plain.placeOrder(APPLE_SMART, MarketOrder("BUY", 100, faGroup="Everyone"))
    ib_until(fa, nowhere.isDone) and ib_until(plain, not_fa.isDone)
    assert (nowhere.orderStatus.status, not_fa.orderStatus.status) == ("Inactive", "Inactive")
    assert [code for _, code, _ in fa_errors] == [436]
    assert [code for _, code, _ in plain_errors] == [201]
    assert "Financial Advisor" in plain_errors[0][2]


# ----------------------------------------------------------------------------- away and back
def test_fills_while_the_client_is_away_are_there_when_it_comes_back(single_gateway, connect):
    ib = connect(single_gateway, client_id=42)
    target = first_second(lambda q: q.ask < quote(T0).ask - 0.30, step=30)
    limit = quote(target).ask
    trade = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", 100, limit, orderRef="ibw-away"))
    ib_until(ib, lambda: trade.orderStatus.status == "Submitted")
    perm_id = trade.order.permId
    ib.disconnect()
    single_gateway.gateway.clock.advance(target - T0)  # the market crosses while nobody listens
    single_gateway.call(single_gateway.gateway.engine.evaluate)

    back = connect(single_gateway, client_id=42)
    (found,) = [t for t in back.trades() if t.order.permId == perm_id]
    assert found.orderStatus.status == "Filled"  # from reqCompletedOrders at connect
    assert found.order.orderRef == "ibw-away"
    fills = [f for f in back.reqExecutions() if f.execution.permId == perm_id]
    assert [(f.execution.price, f.execution.orderRef) for f in fills] == [(limit, "ibw-away")]
    joined = {f.execution.execId: f for f in back.fills()}[fills[0].execution.execId]
    ib_until(back, lambda: joined.commissionReport.commission > 0)
    assert back.reqOpenOrders() == []


def test_orders_keep_working_across_a_restart_with_nobody_connected(single_gateway, connect):
    ib = connect(single_gateway, client_id=43)
    target = first_second(lambda q: q.ask < quote(T0).ask - 0.30, step=30)
    trade = ib.placeOrder(APPLE_SMART, LimitOrder("BUY", 100, quote(target).ask, tif="GTC"))
    ib_until(ib, lambda: trade.orderStatus.status == "Submitted")
    ib.disconnect()
    single_gateway.restart(refuse_for=0.0).result(WAIT)
    single_gateway.gateway.clock.advance(target - T0)  # the engine's own loop sees the market cross
    book, perm_id = single_gateway.gateway.book, trade.order.permId
    poll_until(
        lambda: single_gateway.call(lambda: all(o.perm_id != perm_id for o in book.open_orders)),
        "the engine's loop filled the order",
    )
    back = connect(single_gateway, client_id=43)
    (found,) = [t for t in back.trades() if t.order.permId == trade.order.permId]
    assert found.orderStatus.status == "Filled"


def test_a_late_commission_arrives_after_the_fill(make_gateway, connect):
    gw = make_gateway(book=Book.from_scenario(SINGLE), late_commission=2.5)
    ib = connect(gw)
    late_fill = None
    for _ in range(12):  # one execId in four (by its hash) gets its commission late
        trade = ib.placeOrder(APPLE_SMART, MarketOrder("BUY", 100))
        ib_until(ib, trade.isDone)
        ib.reqCurrentTime()  # a round trip: an on-time commission has arrived by now
        if trade.fills[0].commissionReport.commission == 0:
            late_fill = trade.fills[0]
            break
    assert late_fill is not None, "no commission was late"
    ib_until(ib, lambda: late_fill.commissionReport.commission > 0)
    assert late_fill.commissionReport.execId == late_fill.execution.execId
    joined = {f.execution.execId: f for f in ib.fills()}
    assert joined[late_fill.execution.execId].commissionReport.commission == 1.0


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("order", "code", "words"),
    [
        (Order(action="BUY", totalQuantity=100, orderType="PEG MID"), 201, "PEG MID"),
        (Order(action="BUY", totalQuantity=100, orderType="LMT"), 201, "limit price"),
        (LimitOrder("BUY", 100, 197.333), 110, "minimum price variation"),
        (Order(action="BUY", totalQuantity=100, orderType="STP"), 201, "auxPrice"),
        (Order(action="BUY", totalQuantity=100, orderType="TRAIL"), 201, "trailing"),
        (Order(action="BUY", totalQuantity=100, orderType="MOC", tif="GTC"), 201, "DAY"),
        (LimitOrder("BUY", 100, 190.0, tif="OPG"), 201, "time in force"),
        (MarketOrder("BUY", 100, algoStrategy="Nonsense"), 439, "Algorithm"),
        (MarketOrder("BUY", 100, algoStrategy="ArrivalPx"), 201, "ArrivalPx"),
        (MarketOrder("BUY", 0), 434, "cannot be zero"),
    ],
)
def test_orders_ib_refuses_end_inactive_with_its_error(single_gateway, connect, order, code, words):
    ib = connect(single_gateway)
    seen = Errors(ib).seen
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Inactive"
    ((req_id, got, text),) = seen
    assert (req_id, got) == (trade.order.orderId, code) and words in text
    done = {t.order.permId: t for t in ib.reqCompletedOrders(False)}
    assert done[trade.order.permId].orderStatus.status == "Inactive"


def test_an_unknown_contract_gets_200(single_gateway, connect):
    ib = connect(single_gateway)
    seen = Errors(ib).seen
    trade = ib.placeOrder(Stock("NOPE", "SMART", "USD"), MarketOrder("BUY", 1))
    ib_until(ib, trade.isDone)
    assert [code for _, code, _ in seen] == [200]


# ----------------------------------------------------------------------------- conditions
def test_an_order_waits_for_its_price_condition(single_gateway, connect):
    ib = connect(single_gateway)
    target = first_second(lambda q: q.last >= quote(T0).last + 0.30, step=30)
    level = round(quote(target).last, 2)
    condition = PriceCondition(isMore=True, price=level, conId=AAPL, exch="SMART")
    order = MarketOrder("BUY", 100, conditions=[condition])
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    advance_to(single_gateway, ib, T0)  # an evaluation at NOW: the condition does not hold
    assert trade.orderStatus.status == "PreSubmitted"
    advance_to(single_gateway, ib, target)
    ib_until(ib, trade.isDone)
    assert trade.fills[0].execution.price == quote(target).ask
    (done,) = [
        t
        for t in connect(single_gateway).reqCompletedOrders(False)
        if t.order.permId == trade.order.permId
    ]
    (echoed,) = done.order.conditions
    assert (echoed.price, echoed.conId, echoed.isMore) == (level, AAPL, True)


def test_a_time_condition_can_cancel_the_order(single_gateway, connect):
    ib = connect(single_gateway)
    at = TimeCondition(isMore=True, time="20240710 11:30:00 US/Eastern")
    order = LimitOrder("BUY", 100, far_below(), conditions=[at], conditionsCancelOrder=True)
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    advance_to(single_gateway, ib, T0 + 30 * 60)
    ib_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Cancelled"


# ----------------------------------------------------------------------------- ibapi
def next_callback(app: TradesApp, key: int | str, name: str) -> tuple:
    """The arguments of the next `name` callback queued under `key` (skipping the others, such
    as the farm notices that share reqId -1 with live fills)."""
    deadline = time.monotonic() + WAIT
    while True:
        event = app.next_event(key, deadline - time.monotonic())
        if event.name == name:
            return event.args


def test_the_official_client_decodes_the_order_flow(single_gateway):
    app = TradesApp().start(single_gateway.port)
    try:
        order = ApiOrder()
        order.action, order.orderType, order.totalQuantity = "BUY", "MKT", Decimal(200)
        order.orderRef, order.algoStrategy = "ibw-api", "Twap"
        order.algoParams = [
            ApiTagValue("startTime", "20240710-15:00:00"),
            ApiTagValue("endTime", "20240710-15:02:00"),
        ]
        condition = order_condition.Create(order_condition.OrderCondition.Time)
        condition.isMore, condition.time = True, "20240710-14:00:00"  # already met
        order.conditions = [condition]
        app.placeOrder(1, ibapi_stock("AAPL"), order)
        contract, placed, state = next_callback(app, "orders", "openOrder")
        assert (contract.conId, placed.orderRef, state.status) == (AAPL, "ibw-api", "PreSubmitted")
        assert placed.permId > 0 and placed.clientId == app.clientId
        assert [(p.tag, p.value) for p in placed.algoParams] == [
            ("startTime", "20240710-15:00:00"), ("endTime", "20240710-15:02:00")
        ]  # fmt: skip
        assert (placed.conditions[0].time, placed.conditions[0].isMore) == (
            "20240710-14:00:00", True
        )  # fmt: skip

        single_gateway.gateway.clock.advance(120)  # the end of the TWAP's window: all of it is due
        single_gateway.call(single_gateway.gateway.engine.evaluate)
        _, execution = next_callback(app, -1, "execDetails")
        assert (execution.shares, execution.orderRef, execution.permId) == (
            Decimal(200), "ibw-api", placed.permId
        )  # fmt: skip
        while (status := next_callback(app, "orders", "orderStatus"))[1] != "Filled":
            pass
        assert status[2:4] == (Decimal(200), Decimal(0))
        (report,) = next_callback(app, "commission", "commission")
        assert (report.execId, report.commissionAndFees) == (execution.execId, 1.0)
        app.sync()
    finally:
        app.close()
    assert not app.decode_failures, f"ibapi could not decode: {app.decode_failures}"
    assert not [e for e in app.errors if e.is_client_side], app.errors


def test_an_order_id_below_the_clients_next_valid_id_gets_103(make_gateway, connect):
    gw = make_gateway(book=Book.from_scenario(SINGLE), next_valid_id=100)
    ib = connect(gw)
    seen = Errors(ib).seen
    order = LimitOrder("BUY", 100, far_below())
    order.orderId = 5  # never used by this client, but below the id it was given
    trade = ib.placeOrder(APPLE_SMART, order)
    ib_until(ib, trade.isDone)
    assert [(req_id, code) for req_id, code, _ in seen] == [(5, 103)]


def test_a_client_at_server_version_176_places_with_fa_profiles(make_gateway, connect):
    """ib_insync's maximum: placeOrder and openOrder still carry faProfile."""
    gw = make_gateway(book=Book.from_scenario(FA_MASTER), max_server_version=176)
    ib = connect(gw)
    assert ib.client.serverVersion() == 176
    trade = ib.placeOrder(APPLE_SMART, MarketOrder("BUY", 100, faProfile="Tilted"))
    ib_until(ib, trade.isDone)
    assert fa_fills(trade) == {SUBS[0]: 50.0, SUBS[1]: 30.0, SUBS[2]: 20.0}
    assert len(ib.reqExecutions()) == 4 + 3  # the scenario's and these
