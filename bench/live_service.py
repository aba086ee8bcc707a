"""The live service: ticks into the lake, the lag until DuckDB sees them, and the order round trip.

Everything runs for real: an embedded gateway (2024-07-10 10:00 New York, regular hours; for the
ticks a thread of the bench at 100 times the real pace, for the orders its own process replaying
at the real pace, as IB Gateway runs beside its clients), a warehouse seeded with the default
universe's security master, and `ibw live` as its own process. Baselines are measured in the same
run, on the same gateway:

  ticks    the service's tick rows written to the lake per second, ÷ the quote changes a bare
           ib_async client (its own process) subscribed to the same contracts at the same time
           receives per second, both counting every tick ib_async delivers (1.00: the service
           stores every quote the gateway sends).
  lag      how old the newest tick is when a DuckDB reader (the catalog, read-only, another
           process's view) first sees it, sampled every 20 ms; ÷ the flush interval, the delay
           the service chooses on purpose.
  intraday the largest lag, over the order run, from an account message of IB (position, P&L,
           account value) to its row in the lake, ÷ the flush interval.
  orders   the round trip of a 10-share MKT order, from `live.submit` (the journal) to Filled and
           the fill recorded in the journal, ÷ a bare ib_async script's placeOrder to Filled;
           both medians of N orders, once the service has been connected for a few seconds.

    uv run python bench/live_service.py [--seconds 20] [--orders 30]       # about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
from ib_async import IB, Contract, MarketOrder

from assets.resources import IBResource, UniverseResource, WarehouseResource
from assets.universe.contracts import contracts
from ibsim.clock import ShiftedClock
from ibsim.config import GatewayConfig
from ibsim.server import GatewayThread
from live.api import submit
from live.intents import OrderIntent
from live.journal import Journal
from live.stream_state import tick_values
from warehouse.catalog import CatalogMissing, connect_readonly

START = datetime(2024, 7, 10, 14, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")
STOCKS = ("AAPL", "MSFT", "SPY", "QQQ", "TSLA")  # the default universe's stocks and pairs
PAIRS = ("EUR.USD", "USD.JPY")
SPEED = 100.0  # gateway seconds per real second: every stream's quote moves every interval
STREAM_INTERVAL = 0.01  # real seconds between the gateway's sends per subscription
AAPL = 265598
ACCOUNT = "DU123456"
FLUSH_EVERY = 0.5
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def seed(gw: GatewayThread, home: Path) -> None:
    resources = {
        "ib": IBResource(port=gw.port, client_id=350),
        "warehouse": WarehouseResource(home=str(home)),
        "universe": UniverseResource(),
    }
    assert dg.materialize([contracts], resources=resources, run_config=QUIET).success


def start_service(
    gw: GatewayThread | GatewayProcess, home: Path, log: Path, streams: str
) -> subprocess.Popen:
    config = home.parent / "live.yml"
    config.write_text(f"streams:\n{streams}flush_every: {FLUSH_EVERY}\n")
    env = {**os.environ, "IB_PORT": str(gw.port), "IBW_LIVE_CLIENT_ID": "77"}
    command = [sys.executable, "-m", "cli", "live", "--home", str(home),
               "--config", str(config)]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def stop(service: subprocess.Popen, log: Path) -> None:
    service.send_signal(signal.SIGINT)
    service.wait(timeout=30)
    print(log.read_text().splitlines()[-1])


def bare_quote_changes(port: int, seconds: float) -> None:
    """A bare ib_async client on the same contracts (its own process, like the service):
    prints the quote changes per second it sees, counted as the service counts its rows."""
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=5, timeout=10)
    quotes: dict[int, dict] = {}
    changes = 0

    def on_tickers(tickers) -> None:  # the service's replay of each read's ticks, counted
        nonlocal changes
        for t in tickers:
            quote = quotes.setdefault(t.contract.conId, {})
            for tick in t.ticks:
                values = dict(tick_values(tick.tickType, tick.price, tick.size))
                if any(quote.get(k) != v for k, v in values.items()):
                    changes += 1
                quote.update(values)

    wanted = [Contract(symbol=s, secType="STK", exchange="SMART", currency="USD") for s in STOCKS]
    wanted += [Contract(symbol=p[:3], secType="CASH", exchange="IDEALPRO", currency=p[4:])
               for p in PAIRS]  # fmt: skip
    ib.pendingTickersEvent += on_tickers
    for contract in wanted:
        ib.reqMktData(ib.reqContractDetails(contract)[0].contract)
    ib.sleep(2)  # the first burst of every subscription is not a rate
    changes, began = 0, time.monotonic()
    ib.sleep(seconds)
    print(changes / (time.monotonic() - began))
    ib.disconnect()


def lake_ticks_and_lag(
    home: Path, seconds: float, service: subprocess.Popen
) -> tuple[float, list[float]]:
    """Tick rows per second landing in the lake, and for every tick the time from its arrival
    at the service to the first DuckDB query that sees it (polled every 20 ms)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            con = connect_readonly(home)
            con.execute("SELECT count(*) FROM live_ticks").fetchone()
            break
        except (CatalogMissing, duckdb.Error):  # not built yet, or no live_ticks view yet
            if time.monotonic() > deadline or service.poll() is not None:
                raise SystemExit("the live service wrote no ticks; see its log") from None
            time.sleep(0.2)
    time.sleep(2)
    newer = "SELECT epoch_us(received_at) FROM live_ticks WHERE epoch_us(received_at) > ?"
    (newest,) = con.execute("SELECT max(epoch_us(received_at)) FROM live_ticks").fetchone()
    began, lags, rows = time.monotonic(), [], 0
    while time.monotonic() - began < seconds:
        seen = [r[0] for r in con.execute(newer, [newest]).fetchall()]
        now = time.time() * 1e6
        lags += [(now - us) / 1e6 for us in seen]
        rows += len(seen)
        newest = max(seen, default=newest)
        time.sleep(0.02)
    con.close()
    return rows / (time.monotonic() - began), lags


def settled(home: Path, quiet: float = 3.0) -> None:
    """Until the service is connected and has been for `quiet` seconds: its start (imports,
    reconciliation, the first subscriptions, alerts and catalog refreshes) is not what either
    round trip measures."""
    health = home / "live" / "health.json"
    deadline = time.monotonic() + 60
    while not (health.exists() and json.loads(health.read_text()).get("connected")):
        if time.monotonic() > deadline:
            raise TimeoutError("the live service did not connect within 60 s")
        time.sleep(0.05)
    time.sleep(quiet)


class GatewayProcess:
    """The embedded gateway in a process of its own, as IB Gateway runs beside its clients: the
    round trips measure the client, not a bench thread sharing the gateway's interpreter (a
    polling loop holding the GIL delays the gateway's replies to one client and not the other)."""

    def __init__(self, start: str, log: Path) -> None:
        command = [sys.executable, "-m", "ibsim", "--port", "0", "--replay", start]
        self.proc = subprocess.Popen(command, stderr=log.open("ab"))
        deadline = time.monotonic() + 60
        while not (found := re.search(r"listening on [\d.]+:(\d+)", log.read_text())):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise SystemExit(f"the embedded gateway did not start; see {log}")
            time.sleep(0.05)
        self.port = int(found[1])

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)


def bare_round_trips(gw: GatewayProcess, n: int) -> list[float]:
    ib = IB()
    ib.connect("127.0.0.1", gw.port, clientId=6, timeout=10)
    contract = Contract(conId=AAPL, exchange="SMART")
    times = []
    for _ in range(n):
        began = time.perf_counter()
        trade = ib.placeOrder(contract, MarketOrder("BUY", 10, account=ACCOUNT))
        deadline = began + 30
        while trade.orderStatus.status != "Filled":  # polled as the service's journal is
            if time.perf_counter() > deadline:
                raise TimeoutError("a bare order was not filled within 30 s")
            ib.sleep(0.001)
        times.append(time.perf_counter() - began)
    ib.disconnect()
    return times


def service_round_trips(home: Path, n: int) -> list[float]:
    times = []
    with Journal.open(home) as journal:
        for i in range(n):
            key = f"bench-{i}-{time.time_ns()}"
            intent = OrderIntent(key=key, account=ACCOUNT, con_id=AAPL, action="BUY", quantity=10)
            began = time.perf_counter()
            submit(intent, home=home)
            deadline = began + 30
            while True:
                row = journal.get(key)
                if row.status == "Filled" and journal.executions(key):
                    break
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"order {key} not filled within 30 s")
                time.sleep(0.001)
            times.append(time.perf_counter() - began)
    return times


def ticks_and_lag(
    gw: GatewayThread, home: Path, log: Path, seconds: float
) -> tuple[float, float, list[float]]:
    """The service's tick rows a second, a bare client's quote changes a second, and the lags."""
    tick_streams = "".join(f"  - {{symbol: {s}, ticks: true}}\n" for s in STOCKS) + "".join(
        f"  - {{symbol: {p}, sec_type: CASH, ticks: true}}\n" for p in PAIRS
    )
    service = start_service(gw, home, log, tick_streams)
    bare = subprocess.Popen(
        [sys.executable, __file__, "--bare", str(gw.port), "--seconds", str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        service_rate, lags = lake_ticks_and_lag(home, seconds, service)
        bare_rate = float(bare.communicate(timeout=120)[0].split()[-1])
    finally:
        stop(service, log)
    return service_rate, bare_rate, lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--orders", type=int, default=30)
    parser.add_argument("--orders-only", action="store_true", help="skip the ticks and the lag")
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        return bare_quote_changes(args.bare, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        home, log = Path(tmp) / "ibw", Path(tmp) / "live.log"
        fast = GatewayConfig(
            port=0, clock=ShiftedClock(START, speed=SPEED), stream_interval=STREAM_INTERVAL
        )
        with GatewayThread(fast) as gw:  # ticks: every quote moves at every send
            seed(gw, home)
            if not args.orders_only:
                service_rate, bare_rate, lags = ticks_and_lag(gw, home, log, args.seconds)
        replay = f"{START.astimezone(NEW_YORK):%Y-%m-%d %H:%M}"
        with GatewayProcess(replay, Path(tmp) / "gateway.log") as gw:  # orders
            service = start_service(gw, home, log, "  - {symbol: AAPL, ticks: true}\n")
            try:
                settled(home)
                bare = bare_round_trips(gw, args.orders)
                mine = service_round_trips(home, args.orders)
            finally:
                stop(service, log)
        intraday = json.loads((home / "live" / "health.json").read_text())["intraday"]
    if not args.orders_only:
        lags.sort()
        p50, p95 = lags[len(lags) // 2], lags[int(len(lags) * 0.95)]
        print(f"ticks: {service_rate:,.0f} rows/s into the lake vs {bare_rate:,.0f} quote "
              f"changes/s seen by bare ib_async = {service_rate / bare_rate:.2f}")  # fmt: skip
        print(
            f"lag until DuckDB sees a tick: p50 {p50:.3f} s, p95 {p95:.3f} s "
            f"= {p50 / FLUSH_EVERY:.2f} / {p95 / FLUSH_EVERY:.2f} of the {FLUSH_EVERY} s flush"
        )
    m, b = statistics.median(mine), statistics.median(bare)
    print(
        f"order round trip (median of {args.orders}): service {m * 1000:.1f} ms "
        f"(intent -> Filled recorded), bare ib_async {b * 1000:.1f} ms = {m / b:.2f}"
    )
    print(
        f"intraday datasets: {intraday['rows_written']} rows, largest lag from IB's message to "
        f"the lake {intraday['max_lag_seconds']:.3f} s = "
        f"{intraday['max_lag_seconds'] / FLUSH_EVERY:.2f} of the {FLUSH_EVERY} s flush"
    )


if __name__ == "__main__":
    main()
