"""Shared fixtures: an embedded gateway on a free port, and ib_async clients connected to it."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ib_async import IB

from ibsim.clock import ManualClock
from ibsim.config import GatewayConfig, PacingRules
from ibsim.server import GatewayThread

# A Wednesday in July 2024, 11:00 New York: regular hours, a week after the 07-03 early close.
NOW = datetime(2024, 7, 10, 15, 0, tzinfo=UTC)
RELAXED = PacingRules(window_limit=1_000_000, identical_window=0.0, burst_limit=1_000_000)
_client_ids = itertools.count(100)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="run chaos and soak tests at full size")


def test_config(**overrides) -> GatewayConfig:
    """A gateway on a free port with a pinned clock and no soft throttle."""
    base = GatewayConfig(
        port=0,
        clock=ManualClock(NOW),
        pacing=RELAXED,
        soft_throttle_bars_per_second=0.0,
        update_interval=0.05,
    )
    return replace(base, **overrides)


@pytest.fixture(scope="session")
def gateway() -> Iterator[GatewayThread]:
    with GatewayThread(test_config()) as gw:
        yield gw


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., GatewayThread]]:
    """Private gateways for tests that change the clock or the rules."""
    started: list[GatewayThread] = []

    def make(**overrides) -> GatewayThread:
        gw = GatewayThread(test_config(**overrides)).start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture
def connect() -> Iterator[Callable[[GatewayThread], IB]]:
    """ib_async clients, each with its own clientId, disconnected after the test."""
    clients: list[IB] = []

    def open_client(gw: GatewayThread, client_id: int | None = None) -> IB:
        ib = IB()
        ib.connect("127.0.0.1", gw.port, clientId=client_id or next(_client_ids), timeout=10)
        clients.append(ib)
        return ib

    yield open_client
    for ib in clients:
        ib.disconnect()


@pytest.fixture
def ib(gateway: GatewayThread, connect) -> IB:
    return connect(gateway)


def request_error(ib: IB, coro, timeout: float = 15.0) -> tuple[int, str]:
    """Start a request and return the (code, text) of the first error IB sends for it.

    Needed for codes that ib_async treats as warnings (321): they never end the request.
    """
    seen: list[tuple[int, str]] = []

    def on_error(req_id, code, text, contract):
        if req_id >= 0 and code not in (2104, 2106, 2158, 2174):
            seen.append((code, text))

    ib.errorEvent += on_error
    task = asyncio.ensure_future(coro)
    try:
        ib.run(_wait_for(lambda: bool(seen) or task.done(), timeout))
    finally:
        ib.errorEvent -= on_error
        if not task.done():
            task.cancel()
    assert seen, "the gateway answered without an error"
    return seen[0]


async def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


@pytest.fixture(scope="session")
def seeded(gateway: GatewayThread, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding the default universe's security master (made once, then copied)."""
    import dagster as dg

    from assets.resources import IBResource, UniverseResource, WarehouseResource
    from assets.universe.contracts import contracts
    from tests.test_assets import write_universe

    base = tmp_path_factory.mktemp("seed")
    home, universe = base / "ibw", write_universe(base, [])
    resources = {
        "ib": IBResource(port=gateway.port, client_id=350),
        "warehouse": WarehouseResource(home=str(home)),
        "universe": UniverseResource(path=str(universe)),
    }
    assert dg.materialize([contracts], resources=resources).success
    return home


@pytest.fixture
def seeded_home(seeded: Path, tmp_path: Path) -> Path:
    """A fresh copy of the seeded warehouse."""
    shutil.copytree(seeded, tmp_path / "ibw")
    return tmp_path / "ibw"


@pytest.fixture
def fa_gateway(make_gateway) -> GatewayThread:
    """A private gateway whose login is the FA master of tests/scenarios.py."""
    from ibsim.accounts.book import Book
    from tests.scenarios import FA_MASTER

    return make_gateway(book=Book.from_scenario(FA_MASTER))


@pytest.fixture
def single_gateway(make_gateway) -> GatewayThread:
    """A private gateway with the single paper account of tests/scenarios.py."""
    from ibsim.accounts.book import Book
    from tests.scenarios import SINGLE

    return make_gateway(book=Book.from_scenario(SINGLE))
