"""The state of one gateway (one IB login), without sockets: what the handlers read and change
and what outlives every client connection and restart."""

from __future__ import annotations

from collections import Counter

from ibsim.accounts.book import Book
from ibsim.config import GatewayConfig
from ibsim.market.catalog import Catalog
from ibsim.market.pacing import Pacer
from ibsim.orders.engine import Engine
from ibsim.orders.news import OrderNews


class GatewayState:
    """The login's settings, clock, instruments, accounts, pacing and orders, and what the
    handlers keep for the whole login. The server (ibsim.server) holds the sockets and clients."""

    def __init__(self, config: GatewayConfig, news: OrderNews) -> None:
        self.config = config
        self.clock = config.clock
        self.catalog = Catalog(self.clock)
        self.book = config.book or Book.single(config.accounts[0])
        self.pacer = Pacer(config.pacing)
        # The API's orders; their news goes to `news` (the placing client, if connected).
        self.engine = Engine(config, self.catalog, self.book, news)
        self.open_requests: set[tuple[int, int]] = set()  # (id(client), reqId)
        # Requests received per message id: tests land a fault after the k-th of a kind.
        self.requests_received: Counter[int] = Counter()
        self.link_up = True  # False between 1100 and 1101/1102: IB's servers are out of reach
        # How many reqExecutions answers (from any client) held back each commission whose
        # commission_delay is -n, by execId: the first n do, every later one reports it.
        self.withheld_commissions: dict[str, int] = {}
