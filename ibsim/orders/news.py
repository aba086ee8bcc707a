"""The order engine's news: what it tells the world about orders and fills, through a
`Protocol` it owns. The wire side (ibsim.handlers.orders.ClientNews) implements it."""

from __future__ import annotations

from typing import Protocol

from ibsim.accounts.book import Execution, Order
from ibsim.market.instruments import Instrument
from ibsim.orders.matching import Reject


class OrderNews(Protocol):
    """Where the engine's news goes: to the client that placed the order, if connected."""

    def order(self, order: Order, inst: Instrument | None) -> None:
        """openOrder + orderStatus: the order as it is now."""

    def status(self, order: Order) -> None:
        """orderStatus alone."""

    def preview(self, order: Order, inst: Instrument) -> None:
        """A whatIf answer: openOrder alone, with the preview's figures."""

    def error(self, client_id: int, order_id: int, reject: Reject) -> None:
        """An order's error or warning (IB's code and text)."""

    def execution(self, ex: Execution, inst: Instrument, cumulative: tuple[float, float]) -> None:
        """A live fill in one account, with cumQty and avgPrice in that account."""

    def commission(self, ex: Execution) -> None:
        """A fill's commission report."""
