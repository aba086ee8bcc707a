"""Orders and fills from the embedded gateway: reqExecutions with its commission reports (on time,
late, withheld, corrected), open orders and completed orders, seen through unmodified ib_async
over a real socket, through the official ibapi client, and as raw fields on the wire.

The scenarios (tests/kit/scenarios.py) are seeded at NOW = 2024-07-10 11:00 New York.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB, ExecutionFilter, Fill
from ib_async.ib import StartupFetch, StartupFetchALL
from ibapi.execution import ExecutionFilter as ApiExecutionFilter

from ibsim.accounts.book import Book
from ibsim.handlers import trades
from ibsim.handlers.fields import UNSET_DOUBLE
from ibsim.server import GatewayThread
from ibsim.server import framing as wire
from tests.kit.ibapi_harness import TradesApp
from tests.kit.rawclient import next_message, read_frame, started
from tests.kit.scenarios import AAPL, ESU4, FA_MASTER, MSFT, SINGLE, SUBS
from tests.kit.waiting import ib_until

C1, C2 = "0000e0d5.66a0b2c1.01.01", "0000e0d5.66a0b2c2.01.01"  # the FA allocation: 60 + 40 AAPL
FIXED, CORRECTION = "0000e0d5.66a0b2c3.01.01", "0000e0d5.66a0b2c3.01.02"  # MSFT, corrected
FA_EXEC_IDS = [C1, C2, FIXED, CORRECTION]
MakeGateway = Callable[..., GatewayThread]
pytestmark = pytest.mark.usefixtures("ib_async_decoded_everything")


# ----------------------------------------------------------------------------- helpers
def scenario(base: dict[str, Any], **changes: Any) -> Book:
    return Book.from_scenario({**base, **changes})


@pytest.fixture
def open_ib() -> Iterator[Callable[..., IB]]:
    """ib_async clients with any clientId (0 too) and startup fetches; disconnected after."""
    clients: list[IB] = []
    ids = iter(range(700, 800))

    def open_(
        gw: GatewayThread, client_id: int | None = None, fetch: StartupFetch = StartupFetchALL
    ) -> IB:
        ib = IB()
        clients.append(ib)
        client_id = next(ids) if client_id is None else client_id
        ib.connect("127.0.0.1", gw.port, clientId=client_id, timeout=10, fetchFields=fetch)
        return ib

    yield open_
    for ib in clients:
        ib.disconnect()


def by_exec_id(fills: list[Fill]) -> dict[str, Fill]:
    return {f.execution.execId: f for f in fills}


def ids(fills: list[Fill]) -> list[str]:
    return [f.execution.execId for f in fills]


# ----------------------------------------------------------------------------- executions
def test_executions_report_todays_fills_with_exact_fields(fa_gateway, connect):
    ib = connect(fa_gateway)
    fills = by_exec_id(ib.reqExecutions())
    assert list(fills) == FA_EXEC_IDS

    first = fills[C1]
    ex, contract = first.execution, first.contract
    assert (contract.conId, contract.symbol, contract.secType) == (AAPL, "AAPL", "STK")
    assert contract.currency == "USD"  # ib_async hands out the order's contract (SMART) here
    assert (ex.acctNumber, ex.side, ex.shares, ex.price) == (SUBS[0], "BOT", 60.0, 181.0)
    assert (ex.orderId, ex.permId, ex.clientId, ex.exchange) == (11, 1_900_000_011, 0, "ISLAND")
    assert (ex.cumQty, ex.avgPrice, ex.liquidation, ex.pendingPriceRevision) == (60, 181, 0, False)
    assert ex.time == datetime(2024, 7, 10, 13, 31, 2, tzinfo=UTC)
    second = fills[C2].execution
    assert (second.acctNumber, second.shares, second.cumQty) == (SUBS[1], 40.0, 40.0)


def test_the_on_time_commission_comes_with_the_fills_and_the_late_one_after_the_end(
    fa_gateway, open_ib
):
    ib = open_ib(fa_gateway, fetch=StartupFetchALL & ~StartupFetch.EXECUTIONS)
    fills = by_exec_id(ib.reqExecutions())
    on_time = fills[C1].commissionReport
    assert (on_time.execId, on_time.commission, on_time.currency) == (C1, 0.6, "USD")
    assert on_time.realizedPNL == 0.0  # IB's "no value", which ib_async turns into 0
    assert fills[FIXED].commissionReport.commission == 1.0
    assert fills[CORRECTION].commissionReport.commission == 1.0

    ib_until(ib, lambda: fills[C2].commissionReport.commission > 0, "the late commission")
    late = fills[C2].commissionReport
    assert (late.execId, late.commission, late.currency) == (C2, 0.4, "USD")
    assert by_exec_id(ib.fills())[C2].commissionReport.commission == 0.4


def test_a_late_commission_is_sent_after_execdetailsend(fa_gateway):
    sock = started(fa_gateway, client_id=31)
    try:
        sock.sendall(wire.encode([7, 3, 42, 0, "", "", "", "", "", ""]))
        before_end: list[list[str]] = []
        while (fields := wire.decode_fields(read_frame(sock)))[0] != "55":
            before_end.append(fields)
        assert fields == ["55", "1", "42"]
        reported = [f[2] for f in before_end if f[0] == "59"]
        assert reported == [C1, FIXED, CORRECTION]  # each right after its execDetails
        order = [f[0] for f in before_end if f[0] in ("11", "59")]
        assert order == ["11", "59", "11", "11", "59", "11", "59"]  # C1 C2 FIXED CORRECTION
        assert next_message(sock, "59") == [
            "59", "1", C2, "0.4", "USD", UNSET_DOUBLE, UNSET_DOUBLE, ""
        ]  # fmt: skip
    finally:
        sock.close()


def test_a_withheld_commission_comes_only_with_a_later_request(make_gateway, open_ib):
    executions = [dict(e) for e in FA_MASTER["executions"]]
    executions[0]["commission_delay"] = -1
    gw = make_gateway(book=scenario(FA_MASTER, executions=executions))
    ib = open_ib(gw)  # its startup reqExecutions gets the fill without the commission
    ib.reqCurrentTime()  # a round trip: everything sent before it has been read
    assert by_exec_id(ib.fills())[C1].commissionReport.commission == 0.0
    assert by_exec_id(ib.fills())[FIXED].commissionReport.commission == 1.0

    ib.reqExecutions()
    assert by_exec_id(ib.fills())[C1].commissionReport.commission == 0.6


def test_a_corrected_fill_and_its_correction_are_both_reported(fa_gateway, connect):
    ib = connect(fa_gateway)
    fills = by_exec_id(ib.reqExecutions())
    original, correction = fills[FIXED].execution, fills[CORRECTION].execution
    assert original.execId.rsplit(".", 1)[0] == correction.execId.rsplit(".", 1)[0]
    assert (original.price, correction.price) == (452.0, 452.5)
    assert original.permId == correction.permId == 1_900_000_012
    assert (original.side, original.shares, correction.shares) == ("SLD", 15.0, 15.0)
    # the correction replaces the original, so it does not add to the order's cumulative size
    assert (correction.cumQty, correction.avgPrice) == (15.0, 452.5)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (ExecutionFilter(acctCode=SUBS[2]), [FIXED, CORRECTION]),
        (ExecutionFilter(acctCode="Pair"), [C1, C2]),  # an FA group names its accounts
        (ExecutionFilter(acctCode="DU999"), []),
        (ExecutionFilter(symbol="AAPL"), [C1, C2]),
        (ExecutionFilter(symbol="msft", secType="STK"), [FIXED, CORRECTION]),
        (ExecutionFilter(secType="FUT"), []),
        (ExecutionFilter(side="BUY"), [C1, C2]),
        (ExecutionFilter(side="SELL"), [FIXED, CORRECTION]),
        (ExecutionFilter(time="20240710-14:00:00"), [FIXED, CORRECTION]),
        (ExecutionFilter(time="20240710 10:00:00 US/Eastern"), [FIXED, CORRECTION]),
        (ExecutionFilter(time="20240710-14:02:41"), []),
        (ExecutionFilter(exchange="ISLAND", side="BOT"), [C1, C2]),
        (ExecutionFilter(clientId=5), []),
        (ExecutionFilter(acctCode=SUBS[0], symbol="AAPL", side="BUY"), [C1]),
    ],
)
def test_execution_filters(fa_gateway, connect, flt, expected):
    ib = connect(fa_gateway)
    assert ids(ib.run(ib.reqExecutionsAsync(flt))) == expected


def test_only_todays_fills_up_to_now_are_reported(make_gateway, connect):
    base = FA_MASTER["executions"][0]
    executions = [
        {**base, "exec_id": "yesterday.01", "time": "2024-07-09T19:00:00Z"},
        {**base, "exec_id": "early.01", "time": "2024-07-10T04:30:00Z"},  # 00:30 New York
        {**base, "exec_id": "before-midnight.01", "time": "2024-07-10T03:30:00Z"},  # 07-09 NY
        {**base, "exec_id": "later-today.01", "time": "2024-07-10T18:00:00Z"},  # after NOW
    ]
    gw = make_gateway(book=scenario(FA_MASTER, executions=executions))
    assert ids(connect(gw).reqExecutions()) == ["early.01"]


def test_a_zoneless_filter_time_gets_2174_and_still_answers(fa_gateway, connect):
    ib = connect(fa_gateway)
    warnings: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: warnings.append(code)
    fills = ib.reqExecutions(ExecutionFilter(time="20240710 10:00:00"))
    assert ids(fills) == [FIXED, CORRECTION]  # read in the gateway's zone, New York
    assert 2174 in warnings


def test_a_bad_filter_time_gets_an_error_and_an_empty_answer(fa_gateway, connect):
    ib = connect(fa_gateway)
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append(code)
    assert ib.reqExecutions(ExecutionFilter(time="yesterday")) == []
    assert errors == [321]


# ----------------------------------------------------------------------------- open orders
def test_all_open_orders_with_exact_fields(fa_gateway, connect):
    ib = connect(fa_gateway)
    open_trades = {t.order.orderId: t for t in ib.reqAllOpenOrders()}
    assert sorted(open_trades) == [13, 14]

    stop = open_trades[13]
    assert (stop.contract.conId, stop.contract.secType, stop.contract.localSymbol) == (
        ESU4, "FUT", "ESU4"
    )  # fmt: skip
    assert (stop.contract.symbol, stop.contract.exchange, stop.contract.multiplier) == (
        "ES", "CME", "50"
    )  # fmt: skip
    o = stop.order
    assert (o.action, o.totalQuantity, o.orderType, o.auxPrice, o.tif) == (
        "SELL", 1.0, "STP", 5400.0, "GTC"
    )  # fmt: skip
    assert (o.account, o.orderRef, o.permId, o.clientId) == (SUBS[0], "ibw-stop", 1_900_000_013, 0)
    s = stop.orderStatus
    assert (s.status, s.filled, s.remaining, s.avgFillPrice, s.permId) == (
        "Submitted", 0.0, 1.0, 0.0, 1_900_000_013
    )  # fmt: skip

    fa = open_trades[14]
    assert (fa.contract.conId, fa.contract.symbol) == (AAPL, "AAPL")
    o = fa.order
    assert (o.action, o.totalQuantity, o.orderType, o.lmtPrice) == ("BUY", 30.0, "LMT", 170.0)
    assert (o.account, o.faGroup, o.faMethod, o.faPercentage) == ("", "Everyone", "NetLiq", "")
    assert (o.orderRef, o.permId) == ("ibw-fa", 1_900_000_014)
    assert fa.orderStatus.status == "Submitted" and fa.orderStatus.remaining == 30.0

    assert sorted(t.order.permId for t in ib.openTrades()) == [1_900_000_013, 1_900_000_014]


def test_open_orders_are_the_asking_clients_own(fa_gateway, open_ib):
    other = open_ib(fa_gateway, client_id=9)
    assert other.reqOpenOrders() == []
    assert other.openTrades() == []  # its startup reqOpenOrders found none either
    client_zero = open_ib(fa_gateway, client_id=0)  # the scenario's orders are client 0's
    assert sorted(t.order.orderId for t in client_zero.openTrades()) == [13, 14]
    assert sorted(t.order.orderId for t in client_zero.reqOpenOrders()) == [13, 14]


# ----------------------------------------------------------------------------- completed orders
def test_completed_orders_with_exact_fields(fa_gateway, connect):
    ib = connect(fa_gateway)
    done = {t.order.permId: t for t in ib.reqCompletedOrders(False)}
    assert sorted(done) == [1_900_000_010, 1_900_000_011]

    filled = done[1_900_000_011]
    assert (filled.contract.conId, filled.contract.symbol) == (AAPL, "AAPL")
    o = filled.order
    assert (o.action, o.totalQuantity, o.orderType, o.account) == ("BUY", 100.0, "MKT", "")
    assert (o.faGroup, o.faMethod, o.orderRef, o.filledQuantity) == ("Everyone", "NetLiq", "", 100)
    assert o.orderId == 0 and o.clientId == 0  # completedOrder carries neither
    assert filled.orderStatus.status == "Filled"
    # completedOrder has no avgFillPrice: the order's fills (reqExecutions) give it
    startup = next(t for t in ib.trades() if t.order.permId == 1_900_000_011)
    assert sorted(ids(startup.fills)) == [C1, C2]
    shares = sum(f.execution.shares for f in startup.fills)
    average = sum(f.execution.shares * f.execution.price for f in startup.fills) / shares
    assert (shares, average) == (100.0, 181.0)

    cancelled = done[1_900_000_010]
    o = cancelled.order
    assert (o.action, o.totalQuantity, o.lmtPrice, o.account) == ("SELL", 5.0, 470.0, SUBS[1])
    assert (o.filledQuantity, cancelled.orderStatus.status) == (0.0, "Cancelled")


def test_completed_orders_carry_time_and_status_text(fa_gateway, connect):
    ib = connect(fa_gateway)
    states: list[tuple[int, str, str]] = []
    ib.wrapper.completedOrder = lambda contract, order, state: states.append(
        (order.permId, state.completedTime, state.completedStatus)
    )  # the stock wrapper drops the OrderState
    ib.client.reqCompletedOrders(True)
    ib.reqCurrentTime()
    assert sorted(states) == [
        (1_900_000_010, "20240710 09:40:00 America/New_York", "Cancelled by Trader"),
        (1_900_000_011, "20240710 09:31:02 America/New_York", "Filled"),
    ]


def test_only_orders_completed_today_are_reported(make_gateway, connect):
    old = {**FA_MASTER["completed_orders"][1], "perm_id": 5, "order_id": 5}
    old["completed_time"] = "20240709 15:00:00 America/New_York"
    gw = make_gateway(book=scenario(FA_MASTER, completed_orders=[old]))
    assert connect(gw).reqCompletedOrders(False) == []


# ----------------------------------------------------------------------------- the single account
def test_the_single_account(make_gateway, connect):
    ib = connect(make_gateway(book=Book.from_scenario(SINGLE)))
    (fill,) = ib.reqExecutions()
    ex = fill.execution
    assert (ex.execId, ex.acctNumber, ex.side, ex.shares, ex.price, ex.permId) == (
        "0000e0d5.6690a1b1.01.01", "DU123456", "BOT", 100.0, 180.25, 1_900_000_007
    )  # fmt: skip
    assert ex.time == datetime(2024, 7, 10, 13, 45, 10, tzinfo=UTC)
    assert by_exec_id(ib.fills())[ex.execId].commissionReport.commission == 1.0

    (order,) = ib.reqAllOpenOrders()
    assert (order.contract.conId, order.contract.symbol) == (MSFT, "MSFT")
    assert (order.order.orderId, order.order.lmtPrice, order.order.orderRef) == (8, 400.0, "ibw-k1")
    assert (order.order.permId, order.orderStatus.status) == (1_900_000_008, "Submitted")

    (done,) = ib.reqCompletedOrders(True)
    assert (done.order.permId, done.order.filledQuantity, done.orderStatus.status) == (
        1_900_000_007, 100.0, "Filled"
    )  # fmt: skip
    startup = next(t for t in ib.trades() if t.order.permId == 1_900_000_007)
    assert [f.execution.price for f in startup.fills] == [180.25]


def test_an_empty_book_answers_with_the_ends_only(gateway, connect):
    ib = connect(gateway)
    assert ib.reqExecutions() == []
    assert ib.reqAllOpenOrders() == []
    assert ib.reqCompletedOrders(False) == []


# ----------------------------------------------------------------------------- the wire
def test_field_counts_on_the_wire(fa_gateway):
    sock = started(fa_gateway, client_id=32)
    try:
        sock.sendall(wire.encode([16, 1]))
        open_order = next_message(sock, "5")
        status = next_message(sock, "3")
        assert len(open_order) == 127 and len(status) == 12
        assert status == [
            "3", "13", "Submitted", "0", "1", "0.0", "1900000013", "0", "0.0", "0", "", "0.0"
        ]  # fmt: skip
        assert next_message(sock, "53") == ["53", "1"]
        sock.sendall(wire.encode([99, 0]))
        assert len(next_message(sock, "101")) == 96
        sock.sendall(wire.encode([7, 3, 5, 0, "", "", "", "", "", ""]))
        details = next_message(sock, "11")
        assert len(details) == 32
        assert details[15] == "20240710 09:31:02 US/Eastern"
        assert len(next_message(sock, "59")) == 8
    finally:
        sock.close()


def test_order_fields_follow_the_server_version():
    order = Book.from_scenario(FA_MASTER).open_orders[0]
    for sv, open_len, done_len in ((176, 128, 97), (177, 127, 96), (178, 127, 96)):
        assert len(trades.open_order_fields(order, None, sv)) == open_len
        assert len(trades.completed_order_fields(order, None, sv)) == done_len
    names = [row.name for row in trades.ORDER_FIELDS if row.only != trades.DONE]
    assert names[:3] == ["action", "totalQuantity", "orderType"]
    assert names.index("clientId") == names.index("orderRef") + 1


def test_ib_async_decodes_the_176_layouts(make_gateway, connect):
    """A client that negotiates 176 (ib_insync's maximum) gets faProfile and no
    pendingPriceRevision."""
    gw = make_gateway(book=Book.from_scenario(FA_MASTER), max_server_version=176)
    ib = connect(gw)
    assert ib.client.serverVersion() == 176
    assert ids(ib.reqExecutions()) == FA_EXEC_IDS
    assert sorted(t.order.faGroup for t in ib.reqAllOpenOrders()) == ["", "Everyone"]
    assert len(ib.reqCompletedOrders(False)) == 2


# ----------------------------------------------------------------------------- ibapi
@pytest.fixture
def api(fa_gateway: GatewayThread) -> Iterator[TradesApp]:
    app = TradesApp()
    with contextlib.ExitStack() as stack:
        app.start(fa_gateway.port)
        stack.callback(app.close)
        yield app
    assert not app.decode_failures, f"ibapi could not decode: {app.decode_failures}"
    assert not [e for e in app.errors if e.is_client_side], app.errors


def test_ibapi_decodes_executions_and_commissions(api):
    req_id = api.next_req_id()
    api.reqExecutions(req_id, ApiExecutionFilter())
    reply = api.collect(req_id, "execDetailsEnd")
    assert reply.error is None
    details = reply.all("execDetails")
    assert [ex.execId for _, ex in details] == FA_EXEC_IDS
    contract, ex = details[0]
    assert (contract.conId, contract.symbol, contract.exchange) == (AAPL, "AAPL", "ISLAND")
    assert (ex.acctNumber, ex.side, ex.shares, ex.price) == (SUBS[0], "BOT", Decimal(60), 181.0)
    assert (ex.permId, ex.orderId, ex.cumQty, ex.avgPrice) == (1_900_000_011, 11, Decimal(60), 181)
    assert ex.time == "20240710 09:31:02 US/Eastern"

    reports = [api.next_event("commission").args[0] for _ in range(4)]  # the late one last
    assert [r.execId for r in reports] == [C1, FIXED, CORRECTION, C2]
    assert [r.commissionAndFees for r in reports] == [0.6, 1.0, 1.0, 0.4]
    assert reports[0].realizedPNL == float(UNSET_DOUBLE)


def test_ibapi_decodes_open_and_completed_orders(api):
    api.reqAllOpenOrders()
    reply = api.collect("orders", "openOrderEnd")  # type: ignore[arg-type]
    opened = reply.all("openOrder")
    assert [order.orderId for _, order, _ in opened] == [13, 14]
    contract, order, state = opened[1]
    assert (contract.conId, order.totalQuantity, order.lmtPrice) == (AAPL, Decimal(30), 170.0)
    assert (order.faGroup, order.faMethod, order.orderRef, order.permId) == (
        "Everyone", "NetLiq", "ibw-fa", 1_900_000_014
    )  # fmt: skip
    assert state.status == "Submitted"
    statuses = reply.all("orderStatus")
    assert [(s[0], s[1], s[3]) for s in statuses] == [
        (13, "Submitted", Decimal(1)), (14, "Submitted", Decimal(30))
    ]  # fmt: skip

    api.reqCompletedOrders(False)
    reply = api.collect("completed", "completedOrdersEnd")  # type: ignore[arg-type]
    done = reply.all("completedOrder")
    assert [(o.permId, s.status, s.completedStatus) for _, o, s in done] == [
        (1_900_000_011, "Filled", "Filled"), (1_900_000_010, "Cancelled", "Cancelled by Trader")
    ]  # fmt: skip
    assert done[0][1].filledQuantity == Decimal(100)
    assert done[0][2].completedTime == "20240710 09:31:02 America/New_York"
