"""The gateway: a TCP server speaking the TWS protocol, in the foreground or on a thread. It
holds the sockets and the connected clients; everything else is its GatewayState."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import Counter
from datetime import datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo

from ibsim.accounts.book import Book
from ibsim.clock import Clock
from ibsim.config import GatewayConfig
from ibsim.handlers.orders import ClientNews
from ibsim.market.calendars import warm_up
from ibsim.market.catalog import Catalog
from ibsim.market.pacing import Pacer
from ibsim.orders.engine import Engine
from ibsim.server.connection import Connection
from ibsim.server.faults import GatewayFaults
from ibsim.state import GatewayState

log = logging.getLogger("ibsim")


class Gateway(GatewayFaults):
    """One gateway (one IB login): its listening socket, its client connections and restarts,
    around its `state`; its faults (link lost and restored, farm notices, dropped clients,
    stalls, scripts) are in ibsim.server.faults.
    """

    def __init__(self, config: GatewayConfig | None = None) -> None:
        self.clients: dict[int, Connection] = {}  # by clientId, once startApi came
        self.state = GatewayState(config or GatewayConfig(), ClientNews(self.clients))
        self.port = self.config.port
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._serving: set[asyncio.Task] = set()  # each connection's task
        self.restarts = 0  # restarts so far (daily or asked for)
        self._stopping = False
        self._refuse_until = 0.0  # loop time before which a restart keeps the port closed
        self._listening = asyncio.Lock()  # held while the listening socket opens or closes
        self._daily: asyncio.Task | None = None
        self.fault_tasks: set[asyncio.Task] = set()  # a fault script's (ibsim.server.faults)

    # The state's parts, for the callers that hold a gateway (tests, notebooks, `ibw demo`).
    @property
    def config(self) -> GatewayConfig:
        return self.state.config

    @property
    def clock(self) -> Clock:
        return self.state.clock

    @property
    def catalog(self) -> Catalog:
        return self.state.catalog

    @property
    def book(self) -> Book:
        return self.state.book

    @property
    def pacer(self) -> Pacer:
        return self.state.pacer

    @property
    def engine(self) -> Engine:
        return self.state.engine

    @property
    def next_order_id(self) -> int:
        return self.state.engine.next_order_id

    @property
    def open_requests(self) -> set[tuple[int, int]]:
        return self.state.open_requests

    @property
    def requests_received(self) -> Counter[int]:
        return self.state.requests_received

    async def start(self) -> None:
        # Build the trading calendars before listening, so the first request is not the slow one.
        await asyncio.get_running_loop().run_in_executor(None, warm_up)
        await self._listen(self.config.port)
        self.state.engine.start()
        log.info("embedded IB Gateway listening on %s:%s", self.config.host, self.port)
        if self.config.restart_at is not None:
            self._daily = asyncio.get_running_loop().create_task(self._restart_daily())
        if self.config.faults:
            self.run_faults(self.config.faults)

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._on_connect, self.config.host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, hang up on every client and wait for their connections to wind down."""
        self._stopping = True
        if self._daily is not None:
            self._daily.cancel()
        await self.state.engine.stop()
        for task in list(self.fault_tasks):
            task.cancel()
        async with self._listening:
            if self._server is not None:
                self._server.close()
        for connection in list(self._connections):
            connection.disconnect()
        if self._serving:
            await asyncio.wait(self._serving, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    # ----------------------------------------------------------------- restarts
    async def restart(self, refuse_for: float | None = None) -> None:
        """IB Gateway's daily auto-restart: every connection drops, connects are refused for
        `refuse_for` real seconds (default `config.restart_refusal`), then accepted again.

        Refused means nothing listens on the port, so a client's connect fails at once with
        ConnectionRefusedError (IB's 502 for ibapi), as while a real Gateway restarts, instead
        of hanging until its timeout as it would if the gateway accepted and hung up. The Book,
        the order ids and the pacing history survive: the Gateway restarts, IB's servers do not.
        """
        refuse_for = self.config.restart_refusal if refuse_for is None else refuse_for
        await self.go_down(refuse_for)
        await self.come_up(after=refuse_for)

    async def go_down(self, refuse_for: float | None = None) -> None:
        """The first half of a restart: stop listening, then drop every client connection."""
        async with self._listening:
            self.restarts += 1
            loop = asyncio.get_running_loop()
            self._refuse_until = max(self._refuse_until, loop.time() + (refuse_for or 0.0))
            log.info(
                "restart %s: dropping %s clients, refusing connections for %s s",
                self.restarts, len(self.clients),
                refuse_for if refuse_for is not None else "a while",
            )  # fmt: skip
            if self._server is not None:
                self._server.close()  # the listening socket only; connections are dropped below
        for connection in list(self._connections):
            connection.disconnect()
        if self._serving:
            await asyncio.wait(set(self._serving), timeout=5)

    async def come_up(self, after: float = 0.0) -> None:
        """The second half: after `after` real seconds (and after any later restart's refusal
        has run out), listen again on the same port."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(after)
        while not self._stopping:
            if (wait := self._refuse_until - loop.time()) > 0:
                await asyncio.sleep(wait)
                continue
            async with self._listening:  # no restart or stop may close the port meanwhile
                if self._stopping or self._refuse_until > loop.time():
                    continue
                if self._server is not None and self._server.is_serving():
                    return  # another restart's come_up was first
                try:
                    await self._listen(self.port)
                except OSError as exc:  # someone took the port: IB would not start either
                    log.error("restart: cannot listen on %s:%s again (%s); retrying in 1 s",
                              self.config.host, self.port, exc.strerror or exc)  # fmt: skip
                else:
                    log.info("restart %s: accepting connections on %s:%s again",
                             self.restarts, self.config.host, self.port)  # fmt: skip
                    return
            await asyncio.sleep(1.0)

    async def _restart_daily(self) -> None:
        """Restart at `config.restart_at` (in `config.restart_zone`) every day, on wall time."""
        while True:
            await asyncio.sleep(seconds_until(self.config.restart_at, self.config.restart_zone))
            await self.restart()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        connection = Connection(self.state, self.clients, reader, writer)
        self._connections.add(connection)
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
            self._serving.discard(task)


class GatewayThread:
    """A gateway on its own thread and event loop: for tests, `ibw demo` and notebooks."""

    def __init__(self, config: GatewayConfig | None = None) -> None:
        self.gateway = Gateway(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="ibsim", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        return self.gateway.port

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.gateway.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.gateway.stop())
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def start(self, timeout: float = 30.0) -> GatewayThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the embedded gateway did not start within {timeout:.0f} s")
        if self._error is not None:
            raise self._error
        return self

    def call(self, fn, *args, timeout: float = 10.0):
        """Run `fn(*args)` on the gateway's loop (where its state lives) and return the result."""

        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def restart(
        self, refuse_for: float | None = None, timeout: float = 10.0
    ) -> concurrent.futures.Future:
        """Restart the gateway (see `Gateway.restart`) from another thread.

        Returns once every client is dropped and connects are being refused; the returned
        future completes when the gateway accepts connections again.
        """
        refuse_for = self.gateway.config.restart_refusal if refuse_for is None else refuse_for
        asyncio.run_coroutine_threadsafe(self.gateway.go_down(refuse_for), self._loop).result(
            timeout
        )
        return asyncio.run_coroutine_threadsafe(self.gateway.come_up(refuse_for), self._loop)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def seconds_until(at: dt_time, zone: str, now: datetime | None = None) -> float:
    """Real seconds from `now` (default: the wall clock) to the next `at` o'clock in `zone`."""
    tz = ZoneInfo(zone)
    now = (now or datetime.now(tz)).astimezone(tz)
    target = now.replace(hour=at.hour, minute=at.minute, second=at.second, microsecond=0)
    if target <= now:
        target += timedelta(days=1)  # wall-clock arithmetic: the same o'clock across DST
    return target.timestamp() - now.timestamp()


async def serve(config: GatewayConfig, stop: asyncio.Event) -> None:
    """Run a gateway until `stop` is set (the foreground entry point's loop)."""
    gateway = Gateway(config)
    await gateway.start()
    try:
        await stop.wait()
    finally:
        await gateway.stop()
