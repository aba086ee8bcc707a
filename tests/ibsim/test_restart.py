"""IB Gateway's daily restart: connected clients are dropped, connects are refused for a while,
then accepted again, and the accounts are as they were (IB Gateway's auto-restart).

Only outcomes are asserted, each behind a bounded wait; never how long anything took."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from time import monotonic, sleep
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ib_async import IB, util

from ibsim import GatewayThread
from ibsim import cli as gateway_cli
from ibsim.server.gateway import Gateway, seconds_until
from tests.kit.gateway import gateway_config
from tests.kit.ibapi_harness import IBApiApp
from tests.kit.waiting import until_disconnected

REFUSAL = 3.0  # real seconds of refused connects, where no check depends on its length
WAIT = 30.0  # the most any outcome may take to show


def on_the_gateways_loop(gw: GatewayThread, step: Coroutine[Any, Any, None]) -> None:
    """Run one of the gateway's own coroutines on its loop, to its end."""
    task = gw.call(asyncio.ensure_future, step)
    deadline = monotonic() + WAIT
    while not task.done():
        assert monotonic() < deadline, "the gateway did not finish the step"
        sleep(0.01)
    task.result()


def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_restart_drops_clients_refuses_then_accepts_with_the_book_intact(fa_gateway, connect):
    gw = fa_gateway
    clients = [connect(gw, client_id=cid) for cid in (301, 302)]
    dropped: list[int] = []
    for ib in clients:
        ib.disconnectedEvent += lambda ib=ib: dropped.append(ib.client.clientId)
    book, next_id = gw.gateway.book, gw.gateway.next_order_id
    positions, groups = book.positions, book.groups

    # the restart's two halves, the second only once the checks in between are done, so that
    # no check depends on how fast this machine makes them
    on_the_gateways_loop(gw, gw.gateway.go_down(0.0))

    # every connected client sees the socket close
    until_disconnected(*clients)
    assert len(dropped) == 2
    assert gw.call(lambda: dict(gw.gateway.clients)) == {}

    # while it restarts, a connect is refused at once (not accepted and left hanging)
    with pytest.raises(ConnectionRefusedError):
        IB().connect("127.0.0.1", gw.port, clientId=303, timeout=WAIT)
    assert refused(gw.port)

    # then it listens again, on the same port, and the same clientId may come back
    on_the_gateways_loop(gw, gw.gateway.come_up())
    again = connect(gw, client_id=301)
    assert again.isConnected()
    assert again.managedAccounts() == list(book.managed)
    assert gw.gateway.book is book
    assert book.positions == positions and book.groups == groups
    assert gw.gateway.next_order_id == next_id
    assert gw.gateway.restarts == 1


def test_requests_in_flight_end_with_the_connection(fa_gateway, connect):
    """A request waiting for its answer fails with the disconnect rather than hanging."""
    ib = connect(fa_gateway)
    back = fa_gateway.restart(REFUSAL)
    with pytest.raises(ConnectionError):
        ib.reqCurrentTime()
    back.result(timeout=WAIT)


def test_official_client_sees_connection_closed(fa_gateway):
    app = IBApiApp().start(fa_gateway.port)
    try:
        back = fa_gateway.restart(REFUSAL)
        assert app.next_event("connectionClosed", timeout=WAIT).name == "connectionClosed"
        assert not app.isConnected()
        back.result(timeout=WAIT)
    finally:
        app.close()
    later = IBApiApp().start(fa_gateway.port)
    try:
        assert later.sync() > 0
    finally:
        later.close()


def test_gateway_restart_runs_whole_on_its_own_loop():
    """Gateway.restart (what the daily schedule calls): down, refused, and up again."""

    async def scenario() -> tuple[bool, bool]:
        gateway = Gateway(gateway_config())
        await gateway.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            restart = asyncio.create_task(gateway.restart(REFUSAL))
            assert await asyncio.wait_for(reader.read(), WAIT) == b""  # the gateway hung up
            writer.close()
            was_refused = await asyncio.to_thread(refused, gateway.port)
            await asyncio.wait_for(restart, WAIT)
            _, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            writer.close()
            return was_refused, True
        finally:
            await gateway.stop()

    # on a thread of its own: asyncio.run would unset the main thread's loop, ib_async's
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, scenario()).result(timeout=2 * WAIT) == (True, True)


def test_restarts_that_overlap_keep_the_later_refusal(make_gateway, connect):
    gw = make_gateway()
    first = gw.restart(0.0)
    second = gw.restart(REFUSAL)
    assert refused(gw.port)  # the first restart's (zero) refusal does not reopen the port
    first.result(timeout=WAIT)
    second.result(timeout=WAIT)
    assert connect(gw).reqCurrentTime()
    assert gw.gateway.restarts == 2


def test_gateway_stops_cleanly_during_a_refusal(make_gateway):
    gw = make_gateway()
    gw.restart(60.0)
    gw.stop()
    assert refused(gw.port)


@pytest.mark.parametrize(
    ("now", "at", "expected"),
    [
        # 10:00 New York, restart at 23:45 the same day
        (datetime(2024, 7, 10, 14, 0, tzinfo=UTC), time(23, 45), 13 * 3600 + 45 * 60),
        # 23:50 New York: tomorrow's 23:45
        (datetime(2024, 7, 11, 3, 50, tzinfo=UTC), time(23, 45), 24 * 3600 - 5 * 60),
        # across the end of DST (2024-11-03): a day of 25 hours
        (datetime(2024, 11, 2, 12, 0, tzinfo=UTC), time(8, 0), 25 * 3600),
    ],
)
def test_the_daily_restart_is_at_the_next_wall_clock_time(now, at, expected):
    assert seconds_until(at, "America/New_York", now) == expected


def test_a_gateway_with_a_daily_time_restarts_by_itself(make_gateway, connect):
    # the one wall-clock moment here is the restart time itself: the gateway only has to have
    # started before it; what follows waits for the restart's progress, not for seconds
    soon = datetime.now(ZoneInfo("Asia/Tokyo")) + timedelta(seconds=3)
    gw = make_gateway(
        restart_at=soon.time().replace(microsecond=0), restart_zone="Asia/Tokyo",
        restart_refusal=3.0,
    )  # fmt: skip
    # Progress, in order: the restart counted, the port closed, the port open again. Counting
    # comes a moment before the port closes (on the gateway's thread), so a probe between the
    # two still gets in: only a refusal seen after the count proves the restart is under way.
    deadline, seen_closed = monotonic() + WAIT, False
    while not seen_closed or refused(gw.port):
        assert monotonic() < deadline, "the gateway did not restart and come back by itself"
        seen_closed = seen_closed or (gw.gateway.restarts >= 1 and refused(gw.port))
        util.run(asyncio.sleep(0.05))
    assert connect(gw).reqCurrentTime()


def test_gateway_command_checks_its_restart_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        gateway_cli.main(["--port", "0", "--restart-at", "quarter past"])
    assert exit_.value.code == 2
    assert "'quarter past' is not a time of day" in capsys.readouterr().err
    assert gateway_cli.main(["--port", "0", "--restart-zone", "Mars/Olympus"]) == 2
    assert "Unknown time zone 'Mars/Olympus'" in capsys.readouterr().err
