"""Every path that sends an order or a change passes the pre-trade checks: a modification (of
a parent or of a bracket child), a bracket child, an intent requeued by reconciliation, and a
modification made after the service came back in paper mode; and the issue as reported, with
`ibw live` running beside `ibw order`. A refused change leaves the gateway's order exactly as it
was: the embedded gateway's own book is asked, over a real socket.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ib_async import IB

from ibsim.accounts.book import Book
from live.intents import OrderIntent
from live.journal import IntentRow, Journal
from live.orders import OrderManager
from live.safety import OrderLimits, TradingMode
from tests.kit.live import (
    AAPL,
    CLIENT,
    LIVE_CLIENT_ID,
    at_gateway,
    buy,
    manager,
    order_command,
    pump_until,
    wait_until_serving,
)
from tests.kit.processes import live_command
from tests.kit.waiting import poll_until

LIVE = "U7654321"


def resting(key: str, quantity: float = 10, **kw) -> OrderIntent:
    """A GTC buy limit below the market (about 197), so it rests at the gateway."""
    return buy(key, quantity, order_type="LMT", limit_price=180.0, tif="GTC", **kw)


def gateway_order(gw, key: str):
    """A copy of the gateway's one order with this key, as the gateway holds it now."""
    (order,) = at_gateway(gw, key)
    return gw.call(dataclasses.replace, order)


def settle_modification(ib: IB, m: OrderManager, journal: Journal, key: str) -> str:
    """Pump until the modification is no longer pending, then make one round trip to the
    gateway, so anything sent before it has been handled: the modification's final state."""
    pump_until(ib, m, lambda: journal.get(key).modification_state != "pending")
    ib.reqAllOpenOrders()
    return journal.get(key).modification_state


def assert_refused_untouched(gw, journal: Journal, key: str, before, words: str) -> None:
    events = journal.events(key)
    assert events[-1]["kind"] == "modification failed" and words in events[-1]["detail"]
    assert "modify sent" not in [e["kind"] for e in events]
    assert gateway_order(gw, key) == before


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"quantity": 1e9}, "quantity 1e+09 exceeds the limit of 10000"),
        ({"quantity": 9_000}, "notional 1,620,000.00 exceeds the limit of 1,000,000.00"),
        ({"limit_price": 1_800.0}, "BUY limit price 1800 is 800% above the reference price 200"),
    ],
)
def test_a_modification_past_a_limit_is_refused_and_nothing_is_sent(
    single_gateway, connect, journal, change, words
):
    ib = connect(single_gateway, CLIENT)
    m = manager(ib, journal)
    ib.run(m.reconcile())
    journal.submit(resting("big"))
    pump_until(ib, m, lambda: journal.get("big").status == "Submitted")
    before = gateway_order(single_gateway, "big")
    journal.request_modify("big", **change)
    assert settle_modification(ib, m, journal, "big") == "failed"
    assert_refused_untouched(single_gateway, journal, "big", before, words)
    assert journal.get("big").effective == resting("big")  # what the gateway holds
    journal.request_modify("big", quantity=12)  # a sound one still goes, without the refused
    assert settle_modification(ib, m, journal, "big") == "applied"
    held = gateway_order(single_gateway, "big")
    assert (held.quantity, held.limit_price) == (12, 180.0)


def test_a_live_order_modified_after_a_restart_in_paper_mode_is_refused(
    make_gateway, connect, journal
):
    gw = make_gateway(book=Book.from_scenario({"accounts": [{"id": LIVE, "cash": {"USD": 1e6}}]}))
    ib = connect(gw, CLIENT)
    m = manager(ib, journal, TradingMode("live", frozenset({LIVE})))
    ib.run(m.reconcile())
    journal.submit(resting("real", account=LIVE))
    pump_until(ib, m, lambda: journal.get("real").status == "Submitted")
    before = gateway_order(gw, "real")

    m.detach()  # the service stops, and comes back in paper mode
    ib.disconnect()
    poll_until(
        lambda: gw.call(lambda: CLIENT not in gw.gateway.clients),
        "the gateway noticed the disconnect",
    )
    ib.connect("127.0.0.1", gw.port, clientId=CLIENT, timeout=10)
    paper = manager(ib, journal, TradingMode())
    ib.run(paper.reconcile())
    journal.request_modify("real", quantity=12)
    assert settle_modification(ib, paper, journal, "real") == "failed"
    assert_refused_untouched(gw, journal, "real", before, "IBW_LIVE_ACCOUNTS")


def bracket(child_quantity: float) -> list[OrderIntent]:
    """A held parent and its take-profit child, which transmits both."""
    child = dict(account="DU123456", con_id=AAPL, action="SELL", quantity=child_quantity)
    return [
        resting("parent", transmit=False),
        OrderIntent("tp", **child, order_type="LMT", limit_price=220.0, parent_key="parent"),
    ]


def test_a_bracket_child_over_the_limit_is_refused(single_gateway, connect, journal):
    ib = connect(single_gateway, CLIENT)
    m = manager(ib, journal)
    ib.run(m.reconcile())
    for intent in bracket(child_quantity=20_000):
        journal.submit(intent)
    pump_until(ib, m, lambda: journal.get("tp").state == "refused")
    assert "exceeds the limit of 10000" in journal.get("tp").reason
    ib.reqAllOpenOrders()
    assert at_gateway(single_gateway, "tp") == []


def test_a_modification_of_a_bracket_child_is_checked(single_gateway, connect, journal):
    ib = connect(single_gateway, CLIENT)
    m = manager(ib, journal)
    ib.run(m.reconcile())
    for intent in bracket(child_quantity=10):
        journal.submit(intent)
    pump_until(ib, m, lambda: all(journal.get(k).state == "working" for k in ("parent", "tp")))
    before = gateway_order(single_gateway, "tp")
    journal.request_modify("tp", quantity=20_000)
    assert settle_modification(ib, m, journal, "tp") == "failed"
    assert_refused_untouched(single_gateway, journal, "tp", before, "exceeds the limit of 10000")


def test_a_requeued_intent_is_checked_against_todays_limits(single_gateway, connect, journal):
    ib = connect(single_gateway, CLIENT)
    journal.submit(resting("lost", 100))  # within yesterday's limits
    journal.mark_sending("lost", order_id=ib.client.getReqId(), client_id=CLIENT)  # then a crash
    m = manager(ib, journal, limits=OrderLimits(max_quantity=50))  # limits lowered since
    assert ib.run(m.reconcile()).requeued == ["lost"]
    pump_until(ib, m, lambda: journal.get("lost").state != "new")
    row = journal.get("lost")
    assert row.state == "refused" and "quantity 100 exceeds the limit of 50" in row.reason
    ib.reqAllOpenOrders()
    assert at_gateway(single_gateway, "lost") == []


# ---- the issue as reported: `ibw live` running, `ibw order` beside it -------------------------

WAIT = 60.0  # real seconds any one condition may take


def start_service(gw, home: Path, log: Path, **env: str) -> subprocess.Popen:
    """`ibw live` as its own process, with the trading mode taken from `env`."""
    config = home.parent / "live.yml"
    config.write_text("streams:\n  - {symbol: AAPL, ticks: true}\nflush_every: 0.5\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IBW_")}
    environ |= {"IB_PORT": str(gw.port), "IBW_LIVE_CLIENT_ID": str(LIVE_CLIENT_ID), **env}
    with log.open("ab") as out:
        service = subprocess.Popen(
            live_command(home, config), env=environ, stdout=out, stderr=subprocess.STDOUT
        )
    wait_until_serving(home, service)
    return service


def wait_for(home: Path, key: str, done: Callable[[IntentRow], bool], service) -> IntentRow:
    deadline = time.monotonic() + WAIT
    while True:
        with Journal.open(home) as journal:
            row = journal.get(key)
        if done(row):
            return row
        assert service.poll() is None, "the live service died on its own"
        assert time.monotonic() < deadline, f"order {key} stayed {row}"
        time.sleep(0.1)


def stop(service: subprocess.Popen) -> None:
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=WAIT) == 0


@pytest.mark.slow
def test_ibw_order_modify_cannot_raise_an_order_past_the_limits_or_the_mode(
    make_gateway, seeded_home: Path, tmp_path: Path
):
    cash = {"USD": 1e6}
    gw = make_gateway(book=Book.from_scenario(
        {"accounts": [{"id": "DU7654322", "cash": cash}, {"id": LIVE, "cash": cash}]}
    ))  # fmt: skip
    service = start_service(
        gw, seeded_home, tmp_path / "live.log", IBW_TRADING_MODE="live", IBW_LIVE_ACCOUNTS=LIVE
    )
    try:
        for account, key in (("DU7654322", "to-modify"), (LIVE, "live-one")):
            place = ["place", "AAPL", "10", "--type", "LMT", "--limit", "180", "--tif", "GTC"]
            assert order_command(seeded_home, *place, "--account", account, "--key", key) == 0
            wait_for(seeded_home, key, lambda row: row.status == "Submitted", service)
        before = {key: gateway_order(gw, key) for key in ("to-modify", "live-one")}

        assert order_command(seeded_home, "modify", "to-modify", "--quantity", "1e9") == 0
        row = wait_for(seeded_home, "to-modify", lambda r: r.modification_state != "pending",
                       service)  # fmt: skip
        assert row.modification_state == "failed"
        stop(service)  # and back in paper mode
        service = start_service(gw, seeded_home, tmp_path / "live.log")
        assert order_command(seeded_home, "modify", "live-one", "--quantity", "12") == 0
        row = wait_for(seeded_home, "live-one", lambda r: r.modification_state != "pending",
                       service)  # fmt: skip
        assert row.modification_state == "failed"
        stop(service)  # a clean stop: everything the service sent has reached the gateway
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(timeout=WAIT)
    with Journal.open(seeded_home) as journal:
        reasons = {k: journal.events(k)[-1]["detail"] for k in before}
    assert "quantity 1e+09 exceeds the limit of 10000" in reasons["to-modify"]
    assert f"add {LIVE} to IBW_LIVE_ACCOUNTS" in reasons["live-one"]
    assert {key: gateway_order(gw, key) for key in before} == before
