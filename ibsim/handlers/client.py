"""What a handler sees of the client connection it answers: a `Protocol` that the server's
connection (ibsim.server.connection) implements, so handlers never import the server."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from datetime import datetime
from typing import Any, ClassVar, Protocol

from ibsim.market.errors import IBError
from ibsim.state import GatewayState


class Subscription(Protocol):
    """A streaming request of one client, brought up to the gateway's clock by the pump."""

    req_id: int
    takes_line: ClassVar[bool]  # holds one of the login's market data lines

    def advance(self, client: Client, now: int, live: bool) -> None:
        """Catch up to gateway second `now`: send what is new if `live`, else let it pass."""


class Client(Protocol):
    """One connected API client of the login, and what the handlers keep about it."""

    state: GatewayState  # the login's: config, clock, catalog, book, pacer, orders
    client_id: int | None
    server_version: int
    # Streaming market data, tick-by-tick and real-time bars (ibsim.handlers.streaming) and the
    # account subscriptions (ibsim.handlers.portfolio) by reqId, sent by the `pump` task; they
    # all end with the connection.
    subscriptions: dict[int, Subscription]
    pump: asyncio.Task | None
    historical: dict[int, asyncio.Task]  # open bar requests by reqId
    streaming: set[int]  # keepUpToDate requests past their first answer
    positions_subscribed: bool  # reqPositions until cancelPositions: fills push `position`
    market_data_type: int  # reqMarketDataType: 1 live, 2 frozen, 3 delayed, 4 both

    @property
    def stalled(self) -> bool:
        """Neither reading nor sending for now (a stall fault)."""

    @property
    def closing(self) -> bool:
        """Its connection is being closed."""

    def peers(self) -> Iterable[Client]:
        """Every client connected to this login, this one included."""

    def send(self, *fields: object) -> None: ...

    def send_payload(self, payload: bytes) -> None:
        """Send a message already spelled as NUL-terminated fields."""

    def send_error(self, req_id: int, error: IBError) -> None: ...

    def notify(self, *fields: object) -> None:
        """Send news nobody asked for just now (held while IB's link is down)."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task:
        """Run a long request beside the read loop; it dies with the connection."""

    def now(self) -> datetime: ...
