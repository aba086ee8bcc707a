"""Orders never wait behind market data: on a login whose backfill just used its share of the
small-bar budget, the live service sends an order placed right after it connects while its gap
refill still waits for pacing, and its real-time bar subscriptions go out within the reserve."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ib_async import util

from ibkr.connection import ConnectionSettings
from ibkr.pacer import PacingBudget, RequestKey
from ibkr.pacing_log import SharedPacer
from ibsim.book import Book
from ibsim.clock import ShiftedClock
from live.config import LiveConfig
from live.journal import Journal
from live.service import LiveService
from tests.conftest import NOW
from tests.scenarios import SINGLE
from tests.test_live_orders import at_gateway, buy

WAIT = 30.0  # real seconds any one condition may take; IB's pacing window here is 600
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


async def until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, f"not within {WAIT:.0f} s: {what}"
        await asyncio.sleep(0.05)


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
