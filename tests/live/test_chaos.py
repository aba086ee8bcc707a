"""The live service under fire: faults of every kind while orders move and streams run.

`ibw live` runs as a real process against an embedded gateway whose clock runs SPEED times the
wall clock (a 5-s bar every 5/SPEED s). While a driver places, modifies and cancels orders
through the journal (limit, market, stop, a VWAP algo, FA-allocated orders), it injects at
least N_EACH faults of each kind, each at a seeded random moment of the service's progress
(after the k-th request the gateway receives, never after so many seconds): the daily restart,
1100 then 1101, 1100 then 1102, a dropped socket, and kill -9 of the service (which is started
again). Then the service stops cleanly and three records must agree exactly: the journal, the
warehouse and the gateway's own book. Every fill once, with its commission; no order twice; no
intent lost; every 5-s bar of the period, equal to the gateway's historical bar; and each
account's last position in the intraday dataset, the gateway's.

CI runs N_EACH = 20 (100 faults); `--full-size` runs 60 of each.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from ibsim.accounts.book import Book
from ibsim.clock import ShiftedClock
from ibsim.config import PacingRules
from ibsim.market.bars import bars_between
from live.api import cancel, modify, submit
from live.intents import OrderIntent
from live.journal import IntentRow, Journal, JournalError
from tests.kit.live import LIVE_CLIENT_ID, wait_until_serving
from tests.kit.processes import live_command
from tests.kit.waiting import poll_until
from warehouse.catalog import connect_readonly

pytestmark = pytest.mark.slow  # real `ibw` processes, seconds to minutes each

SPEED = 10.0
PACING = 0.1
START = datetime(2024, 7, 10, 14, 0, tzinfo=UTC)  # 10:00 New York, regular hours
AAPL, SPY = 265598, 756733
MASTER, SUBS = "DF1110000", ("DU1110001", "DU1110002")
BOOK = {
    "master": MASTER,
    "accounts": [{"id": s, "cash": {"USD": 500_000.0}} for s in SUBS],
    "fa": {"groups": [{"name": "Both", "method": "Equal", "accounts": list(SUBS)}]},
}
FAULTS = ("restart", "lost_then_data_lost", "lost_then_data_kept", "drop", "kill")
SETTLE_TIMEOUT = 60.0


@pytest.mark.timeout(1800)  # CI's size takes about 3 minutes, --full-size's about 10
def test_chaos(make_gateway, seeded_home: Path, tmp_path: Path, request) -> None:
    n_each = 60 if request.config.getoption("--full-size") else 20
    rng = random.Random(20261125)
    gw = make_gateway(
        clock=ShiftedClock(START, speed=SPEED),
        book=Book.from_scenario(BOOK),
        # IB's rules on the gateway's fast clock, windows shortened ×PACING: resubscribing and
        # refilling after 100 faults would otherwise wait minutes for IB's 60 per 10 minutes
        pacing=PacingRules().scaled(PACING),
        restart_refusal=0.3,
    )
    config = tmp_path / "live.yml"
    config.write_text(
        "streams:\n"
        "  - {symbol: AAPL, ticks: true, bars: true}\n"
        "  - {symbol: SPY, ticks: true, bars: true}\n"
        "flush_every: 0.5\nstale_after: 10\n"
        "limits: {max_quantity: 5000, max_notional: 5000000, max_price_deviation: 5}\n"
    )
    env = {
        **os.environ,
        "IB_PORT": str(gw.port),
        "IBW_LIVE_CLIENT_ID": str(LIVE_CLIENT_ID),
        "IBW_PACING_SCALE": str(PACING / SPEED),  # the client's pacer, in real seconds
    }
    command = live_command(seeded_home, config)
    log = tmp_path / "live.log"

    def start() -> subprocess.Popen:
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    service = start()
    driver = Driver(seeded_home, rng)
    faults = [f for f in FAULTS for _ in range(n_each)]
    rng.shuffle(faults)
    period_start = gw.gateway.clock.now()
    try:
        for fault in faults:
            for _ in range(rng.randint(0, 2)):
                driver.act()
            wait_until_connected(gw, service)  # every fault hits a live session ...
            # ... at a moment of its progress, never of the wall clock: after the k-th request
            # the gateway receives from here on (the service's startup, orders and heartbeats)
            after = requests_received(gw) + rng.randint(0, 10)
            poll_until(
                lambda after=after: requests_received(gw) >= after,
                "the service's next requests",
                SETTLE_TIMEOUT,
                every=0.005,
                alive=service,
            )
            service = inject(fault, gw, service, start, rng)
        for _ in range(5):
            driver.act()
        # the modifications among the faults land or not as this machine's speed has it: one
        # with no fault beside it makes sure the run exercises modify whatever that speed
        driver.modify_undisturbed(service)
        period_end = gw.gateway.clock.now()
        # Nothing may fill after the service stops; and with algos working, some fill is always
        # waiting for its late commission, so the journal only settles once they are cancelled.
        driver.cancel_all()
        wait_until_settled(seeded_home, service)
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert gw.gateway.pacer.refused == 0, "the service broke IB's pacing rules"
    assert gw.gateway.restarts == n_each
    book = gw.call(lambda: gw.gateway.book)
    check_orders_and_fills(seeded_home, driver, book)
    check_bars(seeded_home, gw, period_start, period_end)
    check_positions(seeded_home, book)


def test_a_stalled_connection_is_dropped_and_served_again(
    make_gateway, seeded_home: Path, tmp_path: Path
) -> None:
    """A gateway that stops answering (the socket stays open) is noticed by the heartbeat, the
    service reconnects, and the streams flow on the new connection."""
    gw = make_gateway(clock=ShiftedClock(START, speed=SPEED), pacing=PacingRules().scaled(PACING))
    config = tmp_path / "live.yml"
    config.write_text("streams:\n  - {symbol: AAPL, bars: true}\nflush_every: 0.5\n")
    env = {**os.environ, "IB_PORT": str(gw.port), "IBW_LIVE_CLIENT_ID": str(LIVE_CLIENT_ID),
           "IBW_PACING_SCALE": str(PACING / SPEED)}  # fmt: skip
    log = tmp_path / "live.log"
    with log.open("ab") as out:
        service = subprocess.Popen(
            live_command(seeded_home, config), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until_serving(seeded_home, service)  # a stall during the connect itself is absorbed
        first = gw.gateway.clients[LIVE_CLIENT_ID]
        gw.call(gw.gateway.stall, 8.0, LIVE_CLIENT_ID)  # longer than the heartbeat's 5 s
        poll_until(
            lambda: gw.gateway.clients.get(LIVE_CLIENT_ID) not in (None, first),
            "the service reconnected after the stall",
            SETTLE_TIMEOUT,
        )
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "did not answer" in text and "1 stall(s)" in text, text[-3000:]


def inject(fault, gw, service, start, rng) -> subprocess.Popen:
    gateway = gw.gateway
    if fault == "restart":
        gw.restart(refuse_for=rng.uniform(0.2, 1.0))
    elif fault.startswith("lost_then"):
        gw.call(gateway.connectivity_lost)
        time.sleep(rng.uniform(0.1, 1.0))
        gw.call(gateway.connectivity_restored, fault.endswith("kept"))
    elif fault == "drop":
        gw.call(gateway.drop_clients)
    elif fault == "kill":
        service.kill()  # SIGKILL: no flush, no goodbye
        service.wait(timeout=10)
        return start()
    return service


class Driver:
    """Places, modifies and cancels orders through the journal, as a user's strategy would."""

    def __init__(self, home: Path, rng: random.Random) -> None:
        self.home = home
        self.rng = rng
        self.keys: list[str] = []

    def act(self) -> None:
        roll = self.rng.random()
        working = [k for k in self.keys if k.startswith("lmt")]
        if roll < 0.15 and working:
            key = self.rng.choice(working)
            with contextlib.suppress(JournalError):  # it may have finished meanwhile
                modify(key, limit_price=round(self.rng.uniform(150, 250), 2), home=self.home)
        elif roll < 0.25 and working:
            cancel(self.rng.choice(working), home=self.home)
        else:
            self.place()

    def place(self) -> None:
        n = len(self.keys)
        kind = self.rng.choice(("mkt", "lmt", "stp", "vwap", "fa"))
        con_id = self.rng.choice((AAPL, SPY))
        action = self.rng.choice(("BUY", "SELL"))
        qty = self.rng.choice((10, 100, 300))
        common = dict(key=f"{kind}-{n}", con_id=con_id, action=action, quantity=qty)
        account = self.rng.choice(SUBS)
        if kind == "mkt":
            intent = OrderIntent(account=account, order_type="MKT", **common)
        elif kind == "lmt":
            price = round(self.rng.uniform(150, 600), 2)
            intent = OrderIntent(account=account, order_type="LMT", limit_price=price, **common)
        elif kind == "stp":
            price = round(self.rng.uniform(150, 600), 2)
            intent = OrderIntent(account=account, order_type="STP", aux_price=price, **common)
        elif kind == "vwap":
            intent = OrderIntent(
                account=account, order_type="MKT", algo="Vwap",
                algo_params={"maxPctVol": "0.2"}, **common,
            )  # fmt: skip
        else:
            intent = OrderIntent(
                account=MASTER, order_type="MKT", fa_group="Both", fa_method="Equal", **common
            )
        submit(intent, home=self.home)
        self.keys.append(intent.key)

    def modify_undisturbed(self, service: subprocess.Popen) -> None:
        """A limit far below the market rests at the gateway; then its price is modified."""
        key = f"lmt-{len(self.keys)}"
        intent = OrderIntent(
            key=key, account=SUBS[0], con_id=AAPL, action="BUY", quantity=10,
            order_type="LMT", limit_price=100.0,
        )  # fmt: skip
        submit(intent, home=self.home)
        self.keys.append(key)
        poll_until(
            lambda: self.row(key).status == "Submitted",
            "the resting order is working",
            SETTLE_TIMEOUT,
            alive=service,
        )
        modify(key, limit_price=101.0, home=self.home)
        poll_until(
            lambda: self.row(key).modification_state == "applied",
            "the modification is applied",
            SETTLE_TIMEOUT,
            alive=service,
        )

    def row(self, key: str) -> IntentRow:
        with Journal.open(self.home) as journal:
            return journal.get(key)

    def cancel_all(self) -> None:
        for key in self.keys:
            cancel(key, home=self.home)


def requests_received(gw) -> int:
    """Every request the gateway has received so far, from any client (read on its loop)."""
    return gw.call(lambda: sum(gw.gateway.requests_received.values()))


def wait_until_connected(gw, service: subprocess.Popen) -> None:
    poll_until(
        lambda: LIVE_CLIENT_ID in gw.gateway.clients,
        "the live service reconnected",
        SETTLE_TIMEOUT,
        alive=service,
    )


def wait_until_settled(home: Path, service: subprocess.Popen) -> None:
    """Every intent has reached the gateway (or been refused) and no order is mid-change."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        assert service.poll() is None, "the live service died on its own"
        with Journal.open(home) as journal:
            if journal.settled():
                return
        time.sleep(0.5)
    raise AssertionError("the journal did not settle within the timeout")


def check_orders_and_fills(home: Path, driver: Driver, book: Book) -> None:
    with Journal.open(home) as journal:
        intents = {i.key: i for i in journal.intents()}
        fills = {f.exec_id: f for f in journal.executions() if not f.superseded_by}
        assert journal.differences() == [], "the journal and the gateway disagreed"
        events = Counter(e["kind"] for e in journal.events())
    # the run exercised what it claims to
    statuses = Counter(i.status for i in intents.values())
    assert statuses["Filled"] > 0 and statuses["Cancelled"] > 0, statuses
    assert events["modification applied"] > 0, events
    fa_fills = Counter(f.key for f in fills.values() if f.key.startswith("fa"))
    assert fa_fills and all(n >= 2 for n in fa_fills.values()), "each FA fill split over two"
    assert max(Counter(f.key for f in fills.values() if f.key.startswith("vwap")).values()) > 1
    # no intent lost: every one the driver wrote is in the journal, sent or refused
    assert set(driver.keys) <= set(intents)
    # no order twice: the gateway holds at most one order per client key
    at_gateway = Counter(
        o.order_ref for o in (*book.open_orders, *book.completed_orders) if o.order_ref
    )
    assert [ref for ref, n in at_gateway.items() if n > 1] == []
    sent = {k for k, i in intents.items() if i.status is not None}  # cancelled unsent: not sent
    assert sent == set(at_gateway), "every sent intent is at the gateway, and nothing else"
    # every fill once, with its commission
    gateway_fills = {e.exec_id: e for e in book.executions if not e.corrected_by}
    assert set(fills) == set(gateway_fills)
    for exec_id, fill in fills.items():
        mine = gateway_fills[exec_id]
        assert (fill.account, fill.con_id, fill.shares, fill.price) == (
            mine.account, mine.con_id, mine.shares, mine.price,
        )  # fmt: skip
        assert fill.commission == pytest.approx(mine.commission)
    # and the warehouse says the same
    with connect_readonly(home) as con:
        stored = con.sql(
            "SELECT exec_id, commission FROM live_fills WHERE superseded_by IS NULL"
        ).fetchall()
    assert dict(stored) == pytest.approx({k: f.commission for k, f in fills.items()})


def check_positions(home: Path, book: Book) -> None:
    """The intraday subscriptions ran through every fault: each account's newest position in
    `live_positions` is the gateway's, and so is the master's sum per contract."""
    with connect_readonly(home) as con:
        rows = con.execute(
            "SELECT account, con_id, position, avg_cost FROM live_positions QUALIFY row_number() "
            "OVER (PARTITION BY account, con_id, aggregate ORDER BY time DESC) = 1"
        ).fetchall()
    stored = {(a, c): (q, cost) for a, c, q, cost in rows}
    held = {(p.account, p.con_id): (float(p.quantity), float(p.avg_cost)) for p in book.positions}
    mine = {k: v for k, v in stored.items() if k[0] != MASTER}
    assert {k: q for k, (q, _) in mine.items()} == {k: q for k, (q, _) in held.items()}
    assert {k: c for k, (_, c) in mine.items()} == pytest.approx(
        {k: c for k, (_, c) in held.items()}
    )
    sums: Counter[int] = Counter()
    for (_, con_id), (quantity, _) in held.items():
        sums[con_id] += quantity
    assert {c: q for (a, c), (q, _) in stored.items() if a == MASTER} == dict(sums)


def check_bars(home: Path, gw, period_start: datetime, period_end: datetime) -> None:
    """Every 5-s bar of the period is stored once and equals the gateway's historical bar."""
    first = -(-int(period_start.timestamp()) // 5) * 5 + 5
    last = int(period_end.timestamp()) // 5 * 5 - 5
    catalog = gw.gateway.catalog
    with connect_readonly(home) as con:
        for con_id in (AAPL, SPY):
            rows = con.sql(
                "SELECT epoch(time)::BIGINT, open, high, low, close, volume FROM live_bars "
                f"WHERE con_id = {con_id} AND time >= to_timestamp({first}) "
                f"AND time < to_timestamp({last}) ORDER BY time"
            ).fetchall()
            inst = catalog.by_con_id(con_id)
            expected = bars_between(inst, "TRADES", False, 5, first, last).values
            scale = 10**inst.decimals
            assert [r[0] for r in rows] == expected.start.tolist(), f"{con_id}: bars missing"
            assert np.allclose([r[4] for r in rows], expected.close / scale)
            assert [int(r[5]) for r in rows] == expected.volume.tolist()
