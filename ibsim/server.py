"""The gateway: a TCP server speaking the TWS protocol, in the foreground or on a thread."""

from __future__ import annotations

import asyncio
import logging
import threading

# they register their handlers
from ibsim import account, errors, fa, historical, portfolio, reference, trades  # noqa: F401
from ibsim.book import Book
from ibsim.catalog import Catalog
from ibsim.config import GatewayConfig
from ibsim.pacing import Pacer
from ibsim.session import ClientSession
from ibsim.sessions import warm_up

log = logging.getLogger("ibsim")


class Gateway:
    """Shared state of one gateway (one IB login): clients, pacing, open requests."""

    def __init__(self, config: GatewayConfig | None = None) -> None:
        self.config = config or GatewayConfig()
        self.clock = self.config.clock
        self.catalog = Catalog(self.clock)
        self.book = self.config.book or Book.single(self.config.accounts[0])
        self.pacer = Pacer(self.config.pacing)
        self.clients: dict[int, ClientSession] = {}
        self.open_requests: set[tuple[int, int]] = set()  # (id(session), reqId)
        self.next_order_id = self.config.next_valid_id
        self.port = self.config.port
        self._server: asyncio.Server | None = None
        self._sessions: set[ClientSession] = set()
        self._connections: set[asyncio.Task] = set()

    async def start(self) -> None:
        # Build the session tables before listening, so the first request is not the slow one.
        await asyncio.get_running_loop().run_in_executor(None, warm_up)
        self._server = await asyncio.start_server(
            self._on_connect, self.config.host, self.config.port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("embedded IB Gateway listening on %s:%s", self.config.host, self.port)

    async def stop(self) -> None:
        """Stop listening, hang up on every client and wait for their connections to wind down."""
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.disconnect()
        if self._connections:
            await asyncio.wait(self._connections, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        session = ClientSession(self, reader, writer)
        self._sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            self._connections.discard(task)

    def register(self, client_id: int, session: ClientSession) -> bool:
        if client_id in self.clients:
            return False
        self.clients[client_id] = session
        return True

    def unregister(self, client_id: int, session: ClientSession) -> None:
        if self.clients.get(client_id) is session:
            del self.clients[client_id]
        self.open_requests = {r for r in self.open_requests if r[0] != id(session)}

    def on_start_api(self, session: ClientSession) -> None:
        """What a real Gateway sends after startApi: accounts, next order id, farm notices."""
        session.send(15, 1, ",".join(self.book.managed))
        session.send(9, 1, self.next_order_id)
        for notice in errors.FARM_NOTICES:
            session.send_error(-1, notice)


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

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


async def serve(config: GatewayConfig, stop: asyncio.Event) -> None:
    """Run a gateway until `stop` is set (the foreground entry point's loop)."""
    gateway = Gateway(config)
    await gateway.start()
    try:
        await stop.wait()
    finally:
        await gateway.stop()
