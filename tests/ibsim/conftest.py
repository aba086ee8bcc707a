"""Fixtures of the gateway's tests: a private gateway on a clock the test moves, and the guard
that fails a test whose ib_async client could not decode what the gateway sent."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from ibsim.clock import ManualClock
from ibsim.server import GatewayThread
from tests.kit.gateway import NOW

# IB's own error replies: ib_async logs them at ERROR level too, and a test may provoke them
IB_ERROR_REPLY = re.compile(r"Error \d+, reqId -?\d+: ")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def gw(make_gateway, clock) -> GatewayThread:
    """A private gateway on `clock`, streaming every 0.05 s."""
    return make_gateway(clock=clock, stream_interval=0.05)


@pytest.fixture
def ib_async_decoded_everything(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """ib_async logs (instead of raising) a message it cannot decode, a reply it cannot place
    (an orderStatus without its order, a tick for an unknown reqId): any such error fails the
    test. IB's error replies (202 and friends) are logged at the same level, and are fine."""
    caplog.set_level(logging.INFO, logger="ib_async")
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert not [
        r.getMessage()
        for r in records
        if r.name.startswith("ib_async")
        and r.levelno >= logging.ERROR
        and not IB_ERROR_REPLY.match(r.getMessage())
    ]
