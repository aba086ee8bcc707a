"""Orders never wait behind market data: on a login whose backfill just used its share of the
small-bar budget, the live service sends an order placed right after it connects while its gap
refill still waits for pacing, and its real-time bar subscriptions go out within the reserve."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest
from ib_async import util

from ibkr.connection import ConnectionSettings
from ibkr.pacer import PacingBudget, RequestKey
from ibkr.pacing_log import SharedPacer
from ibsim.accounts.book import Book
from ibsim.clock import ShiftedClock
from live.config import LiveConfig
from live.journal import Journal
from live.refill import paced
from live.service import LiveService
from tests.kit.gateway import NOW
from tests.kit.live import at_gateway, buy
from tests.kit.scenarios import SINGLE
from tests.kit.waiting import until

WAIT = 30.0  # real seconds the service may take to stop; IB's pacing window here is 600
CONFIG = LiveConfig.parse(
    {"streams": [{"symbol": "AAPL", "bars": True}, {"symbol": "SPY", "bars": True}]}
)


def fill_the_backfills_share(pacer: SharedPacer) -> int:
    """Send small-bar requests as a backfill does until the next one would have to wait."""
    sent = 0
    while True:
        reservation = pacer.reserve(RequestKey(1000 + sent, "SMART", "TRADES", "5 secs", "", "1 D"))
        if reservation.send_at > pacer.clock():
            pacer.release(reservation)
            return sent
        pacer.release(pacer.wait(reservation))
        sent += 1


def test_an_order_goes_out_while_the_refill_waits_for_pacing(
    make_gateway, connect, seeded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("IBW_PACING_SCALE", "IBW_PACING_RESERVE"):
        monkeypatch.delenv(name, raising=False)  # IB's own 10-minute window
    gw = make_gateway(clock=ShiftedClock(NOW), book=Book.from_scenario(SINGLE))
    login = ",".join(sorted(connect(gw).managedAccounts()))
    budget = PacingBudget.from_env()
    with SharedPacer.for_login(seeded_home, "127.0.0.1", gw.port, login, budget=budget) as log:
        assert fill_the_backfills_share(log) == budget.backfill_limit
        service = LiveService(ConnectionSettings(port=gw.port, client_id=41), seeded_home, CONFIG)

        async def scenario() -> None:
            stop = asyncio.Event()
            running = asyncio.ensure_future(service.run(stop))
            try:
                await until(service.ib.isConnected, "the service connects")
                with Journal.open(seeded_home) as journal:  # as `ibw order` does
                    journal.submit(buy("first", order_type="LMT", limit_price=100.0))
                await until(lambda: bool(at_gateway(gw, "first")), "the order reaches IB")
                assert service._streaming is not None and not service._streaming.done()
                streams = service.streams
                assert streams is not None
                await until(
                    lambda: all("bars" in st.subscribed_at for st in streams.states.values()),
                    "the real-time bars are subscribed",
                )
                assert not service._streaming.done(), "the refill did not wait for pacing"
                backfill = log.reserve(RequestKey(1, "SMART", "TRADES", "5 secs", "", "1 D"))
                log.release(backfill)
                assert backfill.send_at > log.clock() + budget.window / 2  # it would wait
                assert log.used() <= budget.window_limit
            finally:
                stop.set()
                await asyncio.wait_for(running, WAIT)

        util.run(scenario())  # on ib_async's loop, which the other clients of the test use


def test_a_request_cancelled_while_waiting_for_a_slot_gives_its_place_back(tmp_path: Path):
    """A session that ends while a request waits for an open slot (the reservation is taken in
    a thread) must not leave that reservation holding a slot until its lease ends."""
    waiting, freed = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:  # the pacer's wait for an open slot
        waiting.set()
        assert freed.wait(WAIT)

    path = tmp_path / "pacing.sqlite"
    with SharedPacer(path, PacingBudget(max_open=1), sleep=sleep) as pacer:
        held = pacer.wait(pacer.reserve(RequestKey(1, "SMART", "TRADES", "1 min", "", "1 D")))

        async def scenario() -> None:
            async def request() -> None:
                async with paced(pacer, RequestKey(2, "SMART", "TRADES", "1 min", "", "1 D")):
                    raise AssertionError("sent although cancelled")

            task = asyncio.ensure_future(request())
            await until(waiting.is_set, "the request waits for a slot")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            pacer.release(held)
            freed.set()
            await until(lambda: reservations_made(path) == 2, "the reservation is made")
            await until(lambda: len(pacer.log()) == 1, "its place is given back")  # held's only

        util.run(scenario())


def reservations_made(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'sends'").fetchone()
    return row[0] if row else 0
