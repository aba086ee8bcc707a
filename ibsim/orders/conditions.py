"""Order conditions (IB's price, time, execution and percent-change conditions): which ones the
simulator accepts, whether an order's conditions hold at an instant, and what they read of the
gateway.

`check` and `met` are pure: they read the market through the `Market` protocol, which
`GatewayMarket` answers from the gateway's quotes and the login's executions. The engine
(ibsim.orders.engine) checks an order's conditions when it is placed and arms the order once
they are met. Imports only ibsim.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from ibsim.accounts import valuation
from ibsim.accounts.book import Book, mark_price
from ibsim.clock import TWS_ZONE, Clock
from ibsim.market.catalog import Catalog
from ibsim.market.instruments import Instrument
from ibsim.market.quotes import Quote
from ibsim.orders.matching import Refused, Reject, rejected
from ibsim.orders.order_times import clock_time

CONDITIONS = {"1": "price", "3": "time", "5": "execution", "7": "percent change"}


class Market(Protocol):
    """What conditions read of the market and the account at the evaluation's instant."""

    def last(self, con_id: int) -> float | None: ...  # None: an unknown conId

    def change(self, con_id: int) -> float | None: ...  # percent since the previous close

    def executed(self, sec_type: str, exchange: str, symbol: str) -> bool: ...


def check(conditions: tuple[tuple[str, ...], ...], now: int) -> Reject | None:
    """IB's refusal of conditions the simulator cannot evaluate or read, or None."""
    for condition in conditions:
        kind = condition[0]
        if kind not in CONDITIONS:
            name = {"4": "margin", "6": "volume"}.get(kind, kind)
            return rejected(
                f"The {name} condition is not simulated by the embedded gateway; use price, "
                "time, execution or percent change conditions."
            )
        try:
            if kind in ("1", "7"):
                float(condition[3])
                int(condition[4])
            elif kind == "3":
                clock_time(condition[3], now)
        except ValueError:
            return rejected(f"The {CONDITIONS[kind]} condition's value is not a number.")
        except Refused as refusal:
            return refusal.reject
    return None


def met(conditions: tuple[tuple[str, ...], ...], now: int, market: Market) -> bool:
    """Whether an order's conditions hold now, read left to right: each condition's
    conjunction ("a" and, "o" or) joins it to the next one."""
    result = _condition(conditions[0], now, market)
    for before, condition in itertools.pairwise(conditions):
        value = _condition(condition, now, market)
        result = (result and value) if before[1] == "a" else (result or value)
    return result


def _condition(condition: tuple[str, ...], now: int, market: Market) -> bool:
    kind = condition[0]
    if kind == "5":  # execution: type, conjunction, secType, exchange, symbol
        return market.executed(condition[2], condition[3], condition[4])
    more = condition[2].strip() not in ("0", "", "false", "False")
    if kind == "3":  # time: type, conjunction, isMore, time
        at = clock_time(condition[3], now) or 0
        return now >= at if more else now <= at
    value = market.last(int(condition[4])) if kind == "1" else market.change(int(condition[4]))
    if value is None:
        return False
    threshold = float(condition[3])
    return value >= threshold if more else value <= threshold


class GatewayMarket:
    """The `Market` of one gateway at its now: last prices from `quote` (the engine's quotes of
    the evaluation), executions from the Book."""

    def __init__(
        self,
        catalog: Catalog,
        book: Book,
        clock: Clock,
        quote: Callable[[Instrument, int], Quote],
    ) -> None:
        self.catalog = catalog
        self.book = book
        self.clock = clock
        self.quote = quote

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    def last(self, con_id: int) -> float | None:
        inst = self.catalog.by_con_id(con_id)
        return None if inst is None else self.quote(inst, self._now()).last

    def change(self, con_id: int) -> float | None:
        """Percent change of the last price since the previous regular close."""
        inst, now = self.catalog.by_con_id(con_id), self.clock.now()
        if inst is None:
            return None
        close = mark_price(inst, datetime.fromtimestamp(valuation.previous_close(inst, now), UTC))
        return (self.quote(inst, self._now()).last - close) / close * 100 if close else None

    def executed(self, sec_type: str, exchange: str, symbol: str) -> bool:
        """Whether the login has a fill of `symbol` today (IB's execution condition)."""
        today = self.clock.now().astimezone(TWS_ZONE).date()
        for ex in self.book.executions:
            inst = self.catalog.by_con_id(ex.con_id)
            if (
                inst is not None and inst.symbol == symbol.upper()
                and (not sec_type or inst.sec_type == sec_type.upper())
                and (exchange.upper() in ("", "SMART") or ex.exchange == exchange.upper())
                and ex.time.astimezone(TWS_ZONE).date() == today
            ):  # fmt: skip
                return True
        return False
