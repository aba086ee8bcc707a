"""The live service on two IB logins: it streams on the data login's gateway and trades on the
trading login's, and each connection fails and comes back on its own, so orders keep going
out while the data gateway is out of reach or restarting, and the streams keep running while
the trading gateway restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ib_async import util

from ibkr.connection import ConnectionSettings
from ibsim.accounts.book import Book
from ibsim.clock import ShiftedClock
from ibsim.server.gateway import GatewayThread
from live.config import LiveConfig
from live.journal import Journal
from live.service import LiveService
from tests.kit.gateway import NOW
from tests.kit.live import at_gateway, buy
from tests.kit.scenarios import SINGLE
from tests.kit.waiting import until

WAIT = 30.0  # real seconds any one step may take
CLIENT_ID = 43  # the service's id is this + 900 on both logins, each on its own gateway
CONFIG = LiveConfig.parse({"streams": [{"symbol": "AAPL", "ticks": True, "bars": True}]})
MKT_DATA, PLACE_ORDER, REAL_TIME_BARS = 1, 3, 50  # TWS API message ids (EClient's out-going)


def test_streams_on_the_data_login_and_trades_on_the_trading_login(
    make_gateway, seeded_home: Path
) -> None:
    trading = make_gateway(clock=ShiftedClock(NOW), book=Book.from_scenario(SINGLE))
    data = make_gateway(clock=ShiftedClock(NOW))
    service = LiveService(
        ConnectionSettings(port=trading.port, client_id=CLIENT_ID),
        seeded_home,
        CONFIG,
        data=ConnectionSettings(port=data.port, client_id=CLIENT_ID),
    )
    journal = Journal.open(seeded_home)  # as `ibw order` does

    def connection(gw: GatewayThread) -> object:
        return gw.call(lambda: gw.gateway.clients.get(service.client_id))

    def received(gw: GatewayThread, msg_id: int) -> int:
        return gw.call(lambda: gw.gateway.requests_received[msg_id])

    async def place(key: str) -> None:
        journal.submit(buy(key, order_type="LMT", limit_price=100.0))
        await until(lambda: bool(at_gateway(trading, key)), f"order {key} reaches IB", WAIT)

    async def on_gateway(gw: GatewayThread, step) -> None:
        task = gw.call(asyncio.ensure_future, step)
        await until(task.done, "the gateway finishes the step", WAIT)
        task.result()

    def ticks() -> int:
        assert service.streams is not None
        return service.streams.health()["totals"]["ticks"]

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.ensure_future(service.run(stop))
        try:
            await until(lambda: connection(trading) and connection(data), "both connect", WAIT)
            await until(lambda: received(data, REAL_TIME_BARS) > 0, "bars subscribed", WAIT)
            await place("first")
            assert received(data, MKT_DATA) > 0 and received(data, PLACE_ORDER) == 0
            assert received(trading, MKT_DATA) == received(trading, REAL_TIME_BARS) == 0
            assert at_gateway(data, "first") == []

            # The data gateway out of reach (1100): its streams wait, orders still go out.
            data.call(data.gateway.connectivity_lost)
            await until(lambda: not service.data.up, "the data link is down", WAIT)
            await place("while-data-lost")
            assert service.trading.up
            data.call(data.gateway.connectivity_restored, True)
            await until(lambda: service.data.up, "the data link is back", WAIT)

            # The data gateway restarts: the trading connection stays, orders still go out.
            before = connection(trading), connection(data)
            await on_gateway(data, data.gateway.go_down(0.0))
            await place("while-data-restarts")
            await on_gateway(data, data.gateway.come_up())
            await until(lambda: connection(data) not in (None, before[1]), "data back", WAIT)
            assert connection(trading) is before[0]

            # The trading gateway restarts: the streams keep their connection and their ticks.
            data_connection, seen = connection(data), ticks()
            await on_gateway(trading, trading.gateway.go_down(0.0))
            await until(lambda: ticks() > seen, "ticks flow while trading is down", WAIT)
            await on_gateway(trading, trading.gateway.come_up())
            await until(lambda: connection(trading) is not None, "trading back", WAIT)
            await place("after-trading-restart")
            assert connection(data) is data_connection
        finally:
            stop.set()
            await asyncio.wait_for(running, WAIT)

        health = service.last_health
        assert [link["role"] for link in health["links"]] == ["trading", "data"]
        assert health["counters"]["connects"] == 4  # two each: the first and after its restart
        assert health["counters"]["link_lost"] == 1
        keys = ("first", "while-data-lost", "while-data-restarts", "after-trading-restart")
        for key in keys:  # each exactly once, on the trading login only
            assert len(at_gateway(trading, key)) == 1, key
            assert at_gateway(data, key) == [], key

    try:
        # ib_async's loop, which the session's other clients use, but not util.run: that
        # cancels its task at the first socket any client loses, and sockets are lost here.
        util.getLoop().run_until_complete(scenario())
    finally:
        journal.close()
