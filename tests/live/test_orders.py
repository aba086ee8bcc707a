"""The order manager against the embedded gateway over a real socket: intents fill and are
journaled with commissions, modify and cancel, FA allocations, fills made while disconnected,
intents caught mid-send by a crash, and live accounts that must never reach the gateway."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ibsim.accounts.book import Book
from ibsim.market.quotes import quote_at
from live.intents import OrderIntent
from live.journal import Journal
from live.orders import OrderManager
from live.safety import OrderLimits, TradingMode
from tests.kit.gateway import NOW
from tests.kit.live import AAPL, CLIENT, TIMEOUT, at_gateway, buy, manager, pump_until
from tests.kit.scenarios import FA_MASTER, SUBS
from tests.kit.waiting import poll_until

BTC = 479624278  # IB's conId for bitcoin on PAXOS


def gateway_fills(gw, key: str) -> list:
    book = gw.gateway.book
    return gw.call(
        lambda: [e for e in book.executions if e.order_ref == key and not e.corrected_by]
    )


def state(journal: Journal, key: str, *states: str) -> Callable[[], bool]:
    return lambda: journal.get(key).state in states


def settled(journal: Journal) -> Callable[[], bool]:
    return journal.settled


def test_mkt_and_lmt_fill_and_are_journaled_with_commissions(single_gateway, connect, journal):
    ib = connect(single_gateway, CLIENT)
    m = manager(ib, journal)
    found = ib.run(m.reconcile())
    # the scenario's own orders and fill are not ours: differences, never adopted
    kinds = sorted(d.kind for d in found.differences)
    assert kinds == ["fill_without_intent", "unknown_order", "unknown_order"]
    journal.submit(buy("mkt"))
    journal.submit(buy("lmt", 5, order_type="LMT", limit_price=210.0))  # marketable (ask ~197)
    pump_until(ib, m, lambda: journal.settled() and journal.get("lmt").state == "done")
    for key, qty in (("mkt", 10), ("lmt", 5)):
        row = journal.get(key)
        assert (row.state, row.status, row.filled) == ("done", "Filled", qty)
        fills = journal.executions(key)
        assert sum(f.shares for f in fills) == qty
        assert all(f.commission and f.commission > 0 for f in fills)
        assert {f.exec_id for f in fills} == {e.exec_id for e in gateway_fills(single_gateway, key)}
        assert len(at_gateway(single_gateway, key)) == 1
    assert ib.run(m.reconcile()).differences == found.differences  # positions add up


def test_a_market_order_no_stream_has_quoted_is_checked_at_a_snapshot_quote(
    single_gateway, connect, journal
):
    """Orders flow before the streams are set up (and on contracts never streamed): a market
    order names no price, so its notional is checked at one snapshot quote, not refused."""
    ib = connect(single_gateway, CLIENT)
    m = OrderManager(ib, journal, OrderLimits(), TradingMode(), lambda con_id: None)
    m.attach()
    ib.run(m.reconcile())
    journal.submit(buy("unquoted"))
    journal.submit(buy("too-big", 9_000))  # about 1.8M at the snapshot's price: over 1M
    pump_until(ib, m, lambda: journal.settled() and journal.get("unquoted").state == "done")
    assert journal.get("unquoted").status == "Filled"
    refused = journal.get("too-big")
    assert refused.state == "refused" and "exceeds the limit of 1,000,000.00" in refused.reason
    assert at_gateway(single_gateway, "too-big") == []


def test_modify_then_cancel(single_gateway, connect, journal):
    ib = connect(single_gateway, CLIENT)
    m = manager(ib, journal)
    ib.run(m.reconcile())
    journal.submit(buy("low", order_type="LMT", limit_price=100.0))
    pump_until(ib, m, lambda: journal.get("low").status == "Submitted")
    journal.request_modify("low", limit_price=101.0, quantity=12)
    pump_until(ib, m, lambda: journal.get("low").modification_state == "applied")
    (order,) = at_gateway(single_gateway, "low")
    assert (order.limit_price, order.quantity) == (101.0, 12)
    journal.request_cancel("low")
    pump_until(ib, m, state(journal, "low", "done"))
    assert journal.get("low").status == "Cancelled"
    assert journal.executions("low") == [] and len(at_gateway(single_gateway, "low")) == 1


@pytest.mark.parametrize(
    ("allocation", "shares"),
    [
        ({"fa_group": "Everyone", "fa_method": "EqualQuantity"}, [10, 10, 10]),
        # A profile (type 1, 50/30/20 %): IB names it in faGroup from server version 177 on.
        ({"fa_profile": "Tilted"}, [15, 9, 6]),
    ],
)
def test_an_fa_order_records_one_fill_per_sub_account_as_allocated(
    make_gateway, connect, journal, allocation, shares
):
    gw = make_gateway(book=Book.from_scenario(FA_MASTER))
    ib = connect(gw, CLIENT)
    m = manager(ib, journal)
    ib.run(m.reconcile())
    journal.submit(buy("fa", 30, account="", **allocation))
    pump_until(ib, m, lambda: journal.get("fa").state == "done" and journal.settled())
    fills = journal.executions("fa")
    by_account = {account: 0.0 for account in SUBS}
    for fill in fills:
        by_account[fill.account] += fill.shares
    assert [by_account[account] for account in SUBS] == shares
    assert all(f.commission for f in fills)
    again = ib.run(m.reconcile())
    assert [d for d in again.differences if d.kind == "position"] == []


def crossing_limit(gw) -> tuple[float, int]:
    """A buy limit below today's ask that the ask reaches later: (limit, seconds until then)."""
    inst = gw.call(gw.gateway.catalog.by_con_id, AAPL)
    start = int(NOW.timestamp())
    now_ask = quote_at(inst, start).ask
    for later in range(60, 4 * 3600, 60):
        ask = quote_at(inst, start + later).ask
        if ask < now_ask - 0.05:
            return ask, later
    raise AssertionError("the synthetic market never fell during the morning")


def test_fills_made_while_away_are_recorded_exactly_once(single_gateway, connect, journal):
    ib = connect(single_gateway, CLIENT)
    m = manager(ib, journal)
    ib.run(m.reconcile())
    limit, later = crossing_limit(single_gateway)
    journal.submit(buy("away", order_type="LMT", limit_price=limit))
    pump_until(ib, m, lambda: journal.get("away").status == "Submitted")
    ib.disconnect()
    single_gateway.call(single_gateway.gateway.clock.advance, later)
    poll_until(lambda: bool(gateway_fills(single_gateway, "away")), "the limit order filled")
    ib.connect("127.0.0.1", single_gateway.port, clientId=CLIENT, timeout=10)
    first = ib.run(m.reconcile())
    assert first.new_fills == len(gateway_fills(single_gateway, "away"))
    pump_until(ib, m, settled(journal))
    assert journal.get("away").state == "done"
    assert ib.run(m.reconcile()).new_fills == 0
    exec_ids = [f.exec_id for f in journal.executions("away")]
    assert sorted(exec_ids) == sorted(e.exec_id for e in gateway_fills(single_gateway, "away"))


def test_an_intent_whose_order_never_arrived_is_sent_after_reconcile(
    single_gateway, connect, journal
):
    ib = connect(single_gateway, CLIENT)
    journal.submit(buy("lost"))
    journal.mark_sending("lost", order_id=ib.client.getReqId(), client_id=CLIENT)  # then a crash
    m = manager(ib, journal)
    result = ib.run(m.reconcile())
    assert result.requeued == ["lost"] and journal.get("lost").state == "new"
    pump_until(ib, m, lambda: journal.get("lost").state == "done" and journal.settled())
    assert len(at_gateway(single_gateway, "lost")) == 1 and journal.get("lost").filled == 10


def test_an_intent_whose_order_arrived_is_adopted_not_sent_again(single_gateway, connect, journal):
    crashed = connect(single_gateway, CLIENT)
    journal.submit(buy("arrived", order_type="LMT", limit_price=100.0))
    row = journal.get("arrived")
    order_id = crashed.client.getReqId()
    journal.mark_sending("arrived", order_id=order_id, client_id=CLIENT)
    crashed.placeOrder(row.intent.to_contract(), row.intent.to_order(order_id))
    deadline = time.monotonic() + TIMEOUT
    while not at_gateway(single_gateway, "arrived"):
        assert time.monotonic() < deadline
        crashed.sleep(0.05)
    crashed.disconnect()  # the service died before journaling the acknowledgement

    ib = connect(single_gateway, CLIENT)
    m = manager(ib, journal)
    result = ib.run(m.reconcile())
    assert result.adopted == ["arrived"] and result.requeued == []
    row = journal.get("arrived")
    assert (row.state, row.order_id) == ("working", order_id) and row.perm_id
    for _ in range(5):
        ib.run(m.pump())
        ib.sleep(0.05)
    assert len(at_gateway(single_gateway, "arrived")) == 1


def test_a_live_account_without_opt_in_never_reaches_the_gateway(make_gateway, connect, journal):
    scenario = {"accounts": [{"id": "U7654321", "cash": {"USD": 100_000.0}}]}
    gw = make_gateway(book=Book.from_scenario(scenario))
    ib = connect(gw, CLIENT)
    m = manager(ib, journal, TradingMode("live"))  # live mode, but not on the allowlist
    ib.run(m.reconcile())
    journal.submit(buy("real", account="U7654321"))
    pump_until(ib, m, state(journal, "real", "refused"))
    row = journal.get("real")
    assert "IBW_LIVE_ACCOUNTS" in row.reason and row.order_id is None
    for _ in range(5):
        ib.run(m.pump())
        ib.sleep(0.05)
    assert at_gateway(gw, "real") == []
    assert [e["kind"] for e in journal.events("real")] == ["submitted", "refused"]


def test_a_bracket_sends_children_after_the_parent(single_gateway, connect, journal):
    ib = connect(single_gateway, CLIENT)
    m = manager(ib, journal)
    ib.run(m.reconcile())
    journal.submit(buy("parent", order_type="LMT", limit_price=100.0, transmit=False))
    child = {"account": "DU123456", "con_id": AAPL, "action": "SELL", "quantity": 10}
    journal.submit(OrderIntent("tp", **child, order_type="LMT", limit_price=300.0,
                               parent_key="parent", transmit=False))  # fmt: skip
    journal.submit(OrderIntent("sl", **child, order_type="STP", aux_price=90.0,
                               parent_key="parent"))  # fmt: skip
    pump_until(
        ib, m, lambda: all(journal.get(k).state == "working" for k in ("parent", "tp", "sl"))
    )
    parent_id = journal.get("parent").order_id
    assert journal.get("tp").order_id > parent_id and journal.get("sl").order_id > parent_id
    (sl,) = at_gateway(single_gateway, "sl")
    assert sl.parent_id == parent_id


def test_the_kill_switch_cancels_every_open_order_and_sends_nothing_journaled_before_it(
    single_gateway, connect, journal
):
    ib = connect(single_gateway, CLIENT)
    m = manager(ib, journal)
    ib.run(m.reconcile())
    for key in ("rest1", "rest2"):  # far below the market: they rest
        journal.submit(buy(key, 5, order_type="LMT", limit_price=50.0))
    pump_until(ib, m, lambda: journal.get("rest2").state == "working")
    journal.submit(buy("queued", 5, order_type="LMT", limit_price=50.0))  # not pumped yet
    assert single_gateway.call(lambda: len(single_gateway.gateway.book.open_orders)) >= 3

    assert journal.request_global_cancel("test") == 3
    journal.submit(buy("after", 1))  # journaled after the kill switch: it goes out
    pump_until(ib, m, lambda: journal.settled() and journal.get("after").state == "done")

    assert journal.get("queued").state == "done" and at_gateway(single_gateway, "queued") == []
    for key in ("rest1", "rest2"):
        assert journal.get(key).status == "Cancelled", key
    assert journal.get("after").status == "Filled"
    # IB's global cancel: the scenario's own orders (other clients') are cancelled too
    assert single_gateway.call(lambda: list(single_gateway.gateway.book.open_orders)) == []
    assert journal.summary()["global_cancels"] == 1 and journal.global_cancels_to_send() == []
    assert [e["kind"] for e in journal.events("rest1")].count("cancel sent") == 0


def test_crypto_is_bought_by_cash_quantity_and_sold_by_quantity(single_gateway, connect, journal):
    """IB sizes a crypto market buy from its cash quantity (cashQty) at the ask and fills a
    fraction of a coin; the journal keeps the amount, the fills and the commission, and the
    coins go back with a limit sell by quantity."""
    ib = connect(single_gateway, CLIENT)
    m = manager(ib, journal)
    ib.run(m.reconcile())
    btc = dict(con_id=BTC, account="DU123456", exchange="PAXOS", tif="IOC")
    journal.submit(OrderIntent(key="btc", action="BUY", quantity=0, cash_quantity=500.0, **btc))
    pump_until(ib, m, lambda: journal.settled() and journal.get("btc").state == "done")
    row, fills = journal.get("btc"), journal.executions("btc")
    assert (row.status, row.intent.cash_quantity) == ("Filled", 500.0)
    coins = sum(f.shares for f in fills)
    assert 0 < coins < 1 and coins != round(coins)  # a fraction of a coin
    assert 499 < sum(f.shares * f.price for f in fills) <= 500  # sized at the ask, rounded down
    assert all(f.commission and f.commission > 0 for f in fills)
    ask = quote_at(single_gateway.gateway.catalog.by_con_id(BTC), int(NOW.timestamp())).ask
    sell = OrderIntent(key="btc-out", action="SELL", quantity=coins, order_type="LMT",
                       limit_price=round(ask * 0.99, 2), **btc)  # fmt: skip
    journal.submit(sell)
    pump_until(ib, m, lambda: journal.settled() and journal.get("btc-out").state == "done")
    assert journal.get("btc-out").filled == pytest.approx(coins)
