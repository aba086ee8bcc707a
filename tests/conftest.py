"""Shared fixtures: an embedded gateway on a free port, ib_async clients connected to it, the
seeded gateways of tests/kit/scenarios.py, a warehouse holding the universe's contracts, and a
real PostgreSQL server with a fresh database per test."""

from __future__ import annotations

import hashlib
import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from ib_async import IB

from ibsim.clock import ShiftedClock
from ibsim.config import PacingRules
from ibsim.server import GatewayThread
from tests.kit.gateway import NOW, PACING_SCALE, gateway_config
from tests.kit.postgres import PostgresServer, server_binaries, start_server

pytest_plugins = ["tests.kit.webhook"]  # the `receiver` fixture: a local alert channel

_client_ids = itertools.count(100)

# Property tests judge what the code does, never how fast this machine runs an example.
settings.register_profile(
    "any_machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("any_machine")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-size",
        action="store_true",
        help="run the chaos, kill and fuzz tests at their full (larger, slower) sizes",
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (stopped by its pid), or a skip saying why."""
    if server_binaries() is None:
        pytest.skip("no PostgreSQL server binaries: install Debian's postgresql, as .ci/run does")
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the session's server, for one test, dropped after it."""
    name = "t_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:20]
    yield postgres.create_database(name)
    postgres.drop_database(name)


@pytest.fixture(scope="session")
def gateway() -> Iterator[GatewayThread]:
    with GatewayThread(gateway_config()) as gw:
        yield gw


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., GatewayThread]]:
    """Private gateways for tests that change the clock or the rules."""
    started: list[GatewayThread] = []

    def make(**overrides) -> GatewayThread:
        gw = GatewayThread(gateway_config(**overrides)).start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture
def compressed_gateway(make_gateway) -> GatewayThread:
    """A private gateway enforcing IB's pacing at PACING_SCALE, its clock running from NOW."""
    return make_gateway(clock=ShiftedClock(NOW), pacing=PacingRules().scaled(PACING_SCALE))


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


@pytest.fixture(scope="session")
def seeded(gateway: GatewayThread, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding the default universe's security master (made once, then copied)."""
    import dagster as dg

    from assets.universe.contracts import contracts
    from tests.kit.universe import dagster_resources, write_universe

    base = tmp_path_factory.mktemp("seed")
    home, universe = base / "ibw", write_universe(base)
    resources = dagster_resources(gateway, home, universe, client_id=350)
    assert dg.materialize([contracts], resources=resources).success
    return home


@pytest.fixture
def seeded_home(seeded: Path, tmp_path: Path) -> Path:
    """A fresh copy of the seeded warehouse."""
    shutil.copytree(seeded, tmp_path / "ibw")
    return tmp_path / "ibw"


@pytest.fixture
def fa_gateway(make_gateway) -> GatewayThread:
    """A private gateway whose login is the FA master of tests/kit/scenarios.py."""
    from ibsim.accounts.book import Book
    from tests.kit.scenarios import FA_MASTER

    return make_gateway(book=Book.from_scenario(FA_MASTER))


@pytest.fixture
def single_gateway(make_gateway) -> GatewayThread:
    """A private gateway with the single paper account of tests/kit/scenarios.py."""
    from ibsim.accounts.book import Book
    from tests.kit.scenarios import SINGLE

    return make_gateway(book=Book.from_scenario(SINGLE))
