"""The embedded gateway as the tests run it: the pinned NOW, relaxed pacing, a config on a free
port, and what an ib_async client needs to ask it (errors by request, round trips, contracts)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from ib_async import IB, Contract, Stock

from ibsim.clock import ManualClock
from ibsim.config import GatewayConfig, PacingRules
from tests.kit.waiting import until

# A Wednesday in July 2024, 11:00 New York: regular hours, a week after the 07-03 early close.
NOW = datetime(2024, 7, 10, 15, 0, tzinfo=UTC)
RELAXED = PacingRules(window_limit=1_000_000, identical_window=0.0, burst_limit=1_000_000)
FARM_NOTICES = (2104, 2106, 2158)
# IB's pacing compressed in time: the 10-minute window becomes 6 s, 15 s 0.15 s, 2 s 0.02 s
PACING_SCALE = 0.01


def gateway_config(**overrides) -> GatewayConfig:
    """A gateway on a free port with a pinned clock and no soft throttle."""
    base = GatewayConfig(
        port=0,
        clock=ManualClock(NOW),
        pacing=RELAXED,
        soft_throttle_bars_per_second=0.0,
        update_interval=0.05,
    )
    return replace(base, **overrides)


def request_error(ib: IB, coro, timeout: float = 15.0) -> tuple[int, str]:
    """Start a request and return the (code, text) of the first error IB sends for it.

    Needed for codes that ib_async treats as warnings (321): they never end the request.
    """
    seen: list[tuple[int, str]] = []

    def on_error(req_id, code, text, contract):
        if req_id >= 0 and code not in (*FARM_NOTICES, 2174):
            seen.append((code, text))

    ib.errorEvent += on_error
    task = asyncio.ensure_future(coro)
    try:
        ib.run(until(lambda: bool(seen) or task.done(), "the request's end", timeout))
    finally:
        ib.errorEvent -= on_error
        if not task.done():
            task.cancel()
    assert seen, "the gateway answered without an error"
    return seen[0]


def sync(ib: IB) -> None:
    """A round trip: every reply to an earlier request has been decoded once this returns."""
    ib.reqCurrentTime()


class Errors:
    """The errors a client saw from now on, as (reqId, code, text), farm notices kept or not."""

    def __init__(self, ib: IB, farm_notices: bool = True) -> None:
        self.seen: list[tuple[int, int, str]] = []

        def on_error(req_id, code, text, contract):
            if farm_notices or code not in FARM_NOTICES:
                self.seen.append((req_id, code, text))

        ib.errorEvent += on_error

    def of(self, req_id: int) -> list[tuple[int, str]]:
        return [(code, text) for r, code, text in self.seen if r == req_id]


def stock(ib: IB, symbol: str) -> Contract:
    """A US stock, qualified by the gateway (conId and all)."""
    [contract] = ib.qualifyContracts(Stock(symbol, "SMART", "USD"))
    return contract
