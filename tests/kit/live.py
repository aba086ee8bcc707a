"""The live side as the tests drive it: the order manager pumped until the journal gets
somewhere, intents, what the gateway's own book holds, `ibw order` and `ibw live`, and the
frames of the live datasets."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from ib_async import IB

from cli.main import main
from live.intents import OrderIntent
from live.journal import Journal
from live.orders import OrderManager
from live.safety import OrderLimits, TradingMode
from live.service import health_path
from tests.kit.scenarios import AAPL
from tests.kit.waiting import WAIT, poll_until

CLIENT = 7  # the order manager's clientId in tests that drive it in process
LIVE_CLIENT_ID = 77  # the clientId of `ibw live` processes
TIMEOUT = 20.0  # real seconds the journal may take to get somewhere
T0 = datetime(2024, 7, 10, 15, 0, tzinfo=UTC)  # the first live bar of the sample frames
DAY = T0.date()


# ----------------------------------------------------------------------------- orders
def manager(
    ib: IB, journal: Journal, mode: TradingMode | None = None, limits: OrderLimits | None = None
) -> OrderManager:
    m = OrderManager(
        ib, journal, limits or OrderLimits(), mode or TradingMode(), lambda con_id: 200.0
    )
    m.attach()
    return m


def pump_until(ib: IB, m: OrderManager, done: Callable[[], bool], timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the journal did not get there in time"
        ib.run(m.pump())
        ib.sleep(0.05)


def buy(key: str, quantity: float = 10, account: str = "DU123456", **kw) -> OrderIntent:
    return OrderIntent(key=key, account=account, con_id=AAPL, action="BUY", quantity=quantity, **kw)


def at_gateway(gw, key: str) -> list:
    """The gateway's orders carrying this key as orderRef (open and completed)."""
    book = gw.gateway.book
    return gw.call(
        lambda: [o for o in (*book.open_orders, *book.completed_orders) if o.order_ref == key]
    )


def order_command(home: Path, *args: str) -> int:
    """`ibw order ARGS... --home HOME`, in process."""
    return main(["order", "--home", str(home), *args])


# ----------------------------------------------------------------------------- the service
def wait_until_serving(home: Path, service: subprocess.Popen) -> None:
    """The service is past connecting and setting up: its health file says so."""
    health = health_path(home)
    poll_until(
        lambda: health.exists() and json.loads(health.read_text())["pid"] == service.pid,
        "the live service started serving",
        WAIT,
        every=0.1,
        alive=service,
    )


# ----------------------------------------------------------------------------- live datasets
def bars(con_id: int, starts: list[int], source: str = "stream", received: int = 0, **over):
    """5-s bars starting `starts` seconds after T0 (prices from the start, so re-fetches agree)."""
    times = [T0 + timedelta(seconds=s) for s in starts]
    price = [100.0 + s / 100 for s in starts]
    rows = {
        "con_id": [con_id] * len(starts),
        "time": times,
        "open": price,
        "high": [p + 0.5 for p in price],
        "low": [p - 0.5 for p in price],
        "close": [p + 0.1 for p in price],
        "volume": [10.0] * len(starts),
        "wap": price,
        "count": [3] * len(starts),
        "source": [source] * len(starts),
        "received_at": [T0 + timedelta(seconds=received)] * len(starts),
    }
    rows.update({k: [v] * len(starts) for k, v in over.items()})
    return pl.DataFrame(rows)


def ticks(con_id: int, offsets: list[float], received: int = 0) -> pl.DataFrame:
    n = len(offsets)
    return pl.DataFrame({
        "con_id": [con_id] * n,
        "time": [T0 + timedelta(seconds=s) for s in offsets],
        "bid": [1.1] * n, "ask": [1.2] * n, "last": [None] * n,
        "bid_size": [1e6] * n, "ask_size": [2e6] * n, "last_size": [None] * n,
        "volume": [None] * n,
        "received_at": [T0 + timedelta(seconds=received + s) for s in offsets],
    }, schema_overrides=dict.fromkeys(["last", "last_size", "volume"], pl.Float64))  # fmt: skip
