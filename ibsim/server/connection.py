"""One client connection: the handshake, startApi, then requests until either side hangs up.
`Connection` is the `Client` the handlers answer (ibsim.handlers.client)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Coroutine, Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ibsim.handlers.client import Subscription
from ibsim.handlers.fields import MAX_FRAME, FieldReader, RequestError, as_int
from ibsim.market import errors
from ibsim.market.errors import IBError
from ibsim.server import framing
from ibsim.server.table import HANDLERS
from ibsim.state import GatewayState

log = logging.getLogger("ibsim")
HANDSHAKE_TIMEOUT = 10.0
START_API = 71


class Connection:
    """One client's socket, from the handshake to the hang-up, and what handlers keep about it.
    `clients` is the login's table of connected clients by clientId, shared by every
    connection: startApi enters this one, its close removes it."""

    def __init__(
        self,
        state: GatewayState,
        clients: dict[int, Connection],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.state = state
        self.clients = clients
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.server_version = 0
        self.peer = writer.get_extra_info("peername")
        self.tasks: set[asyncio.Task] = set()
        self.historical: dict[int, asyncio.Task] = {}  # open bar requests by reqId
        self.streaming: set[int] = set()  # keepUpToDate requests past their first answer
        self.positions_subscribed = False  # reqPositions until cancelPositions
        self.held: list[bytes] = []  # order news kept while the gateway's link to IB is down
        # Streaming market data, tick-by-tick and real-time bars (ibsim.handlers.streaming) and
        # the account subscriptions (ibsim.handlers.portfolio) by reqId, sent by the `pump`
        # task; they all end with the connection.
        self.subscriptions: dict[int, Subscription] = {}
        self.pump: asyncio.Task | None = None
        self.market_data_type = 1  # reqMarketDataType: 1 live, 2 frozen, 3 delayed, 4 both
        # A stall (ibsim.server.faults): until loop time `stalled_until` nothing is read or
        # written; what the gateway sends meanwhile waits in `_stalled_out`, then goes out in
        # order.
        self.stalled_until = 0.0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._stalled_out: list[bytes] = []

    # ----------------------------------------------------------------- sending
    def send(self, *fields: object) -> None:
        self._write(framing.encode(fields))

    def send_payload(self, payload: bytes) -> None:
        self._write(framing.encode_raw(payload))

    def _write(self, frame: bytes) -> None:
        if self.writer.is_closing():
            return
        if self.stalled:
            self._stalled_out.append(frame)
        else:
            self.writer.write(frame)

    def notify(self, *fields: object) -> None:
        """Send news nobody asked for just now (order status, fills): while the gateway has no
        link to IB's servers (1100) it is held, and it goes out, in order, when the link is back.
        """
        if self.state.link_up and not self.held:
            self.send(*fields)
        else:
            self.held.append(framing.encode(fields))

    def release_held(self) -> None:
        """The link is back: send the held news in the order it happened."""
        held, self.held = self.held, []
        for frame in held:
            self._write(frame)

    def send_error(self, req_id: int, error: IBError) -> None:
        self.send(4, 2, req_id, error.code, error.text, "")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task:
        """Run a long request beside the read loop; it dies with the connection."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # ----------------------------------------------------------------- lifecycle
    async def run(self) -> None:
        try:
            if await self._handshake():
                await self._serve()
        except (ConnectionError, asyncio.IncompleteReadError, framing.FrameError, TimeoutError):
            pass
        finally:
            await self._close()

    async def _handshake(self) -> bool:
        prefix = await asyncio.wait_for(self.reader.readexactly(4), HANDSHAKE_TIMEOUT)
        if prefix != b"API\0":
            return False
        size = int.from_bytes(
            await asyncio.wait_for(self.reader.readexactly(4), HANDSHAKE_TIMEOUT), "big"
        )
        if size > MAX_FRAME:
            return False
        hello = await asyncio.wait_for(self.reader.readexactly(size), HANDSHAKE_TIMEOUT)
        low, high = framing.parse_version_range(hello)
        version = min(high, self.state.config.max_server_version)
        if version < low:
            return False
        self.server_version = version
        now = self.state.clock.now().astimezone(ZoneInfo("America/New_York"))
        self.writer.write(framing.encode([version, f"{now:%Y%m%d %H:%M:%S} EST"]))
        await self.writer.drain()
        return True

    async def _serve(self) -> None:
        buffer = bytearray()
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            buffer += chunk
            await self._flowing.wait()  # a stalled gateway reads nothing until it carries on
            for payload in framing.split_frames(buffer):
                fields = framing.decode_fields(payload)
                if not fields:
                    continue
                if self.client_id is None:
                    if not self._start_api(fields):
                        return
                else:
                    await self._dispatch(fields)
            await self.writer.drain()

    def _start_api(self, fields: list[str]) -> bool:
        """Until startApi arrives nothing is answered; a clientId clash gets 326 and a close."""
        if fields[0] != str(START_API):
            return True
        try:
            client_id = as_int(fields[2])
        except (IndexError, ValueError):
            return False
        if client_id in self.clients:
            self.send_error(-1, errors.CLIENT_ID_IN_USE)
            return False
        self.clients[client_id] = self
        self.client_id = client_id
        log.info("client %s connected from %s:%s", client_id, *self.peer[:2])
        self._welcome()
        return True

    def _welcome(self) -> None:
        """What a real Gateway sends after startApi: accounts, next order id, farm notices."""
        engine = self.state.engine
        self.send(15, 1, ",".join(self.state.book.managed))
        self.send(9, 1, engine.next_order_id)
        engine.handed_out(self.client_id or 0, engine.next_order_id)
        for notice in errors.FARM_NOTICES if self.state.link_up else errors.FARMS_BROKEN:
            self.send_error(-1, notice)

    async def _dispatch(self, fields: list[str]) -> None:
        reader = FieldReader(fields)
        try:
            msg_id = int(fields[0])
        except ValueError:
            self.send_error(
                -1, errors.bad_request(f"message id {fields[0][:20]!r} is not a number")
            )
            return
        handler = HANDLERS.get(msg_id)
        if handler is None:
            self.send_error(-1, errors.bad_request(f"unknown message id {msg_id}"))
            return
        self.state.requests_received[msg_id] += 1
        try:
            result = handler(self, reader)
            if inspect.isawaitable(result):
                await result
        except RequestError as exc:
            self.send_error(reader.req_id, errors.bad_request(f"message {msg_id}: {exc}"))
        except IBError as exc:
            self.send_error(reader.req_id, exc)
        except Exception:  # a gateway bug: answer, log it, and keep the connection
            log.exception("message %s failed", msg_id)
            self.send_error(reader.req_id, errors.bad_request(f"message {msg_id} failed"))

    async def _close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        self.subscriptions.clear()  # frees their market data lines and summary slots
        if self.client_id is not None:
            if self.clients.get(self.client_id) is self:
                del self.clients[self.client_id]
            state = self.state
            state.open_requests = {r for r in state.open_requests if r[0] != id(self)}
            log.info("client %s disconnected", self.client_id)
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    def disconnect(self) -> None:
        """Drop the connection from the gateway side (faults, shutdown)."""
        self.writer.close()
        self._flowing.set()  # a stalled read loop must see the close too

    # ----------------------------------------------------------------- stalls (ibsim.server.faults)
    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    def stall(self, until: float) -> None:
        """Neither read nor send until loop time `until` (or a later stall's end)."""
        self.stalled_until = max(self.stalled_until, until)
        self._flowing.clear()

    def unstall(self) -> None:
        """Carry on: send what waited, in order, then read again."""
        self._flowing.set()
        waiting, self._stalled_out = self._stalled_out, []
        for frame in waiting:
            self._write(frame)

    # ----------------------------------------------------------------- for the handlers
    @property
    def closing(self) -> bool:
        return self.writer.is_closing()

    def peers(self) -> Iterable[Connection]:
        """Every client connected to this login, this one included."""
        return self.clients.values()

    def now(self) -> datetime:
        return self.state.clock.now()
