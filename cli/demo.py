"""`ibw demo`: the whole first data path on a fresh machine, against its own embedded gateway.

Starts the embedded gateway on a free port (with the demo accounts: an FA master and two
sub-accounts), materializes the universe, today's option chains and their quotes (implied vols
and greeks) through Dagster (in-process) into $IBW_HOME, backfills daily and 1-min bars of a
stock, an ETF, an FX pair, crypto, a mutual fund and a Treasury the way `ibw backfill` does,
takes tonight's account snapshot, runs the live service for a few seconds (5-s bars, ticks and
a market order, against a second gateway replaying a regular session at ten times the pace, so
the demo streams whatever the hour), then shows what landed and how to query it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
from rich.console import Console
from rich.table import Table

from assets.account.assets import account_snapshot
from assets.resources import IBResource, SnapshotResource, UniverseResource, WarehouseResource
from assets.trading_days import instance_with_days
from assets.universe.contracts import contracts
from assets.universe.option_chains import option_chains
from assets.universe.option_quotes import (
    greeks_within_bounds,
    no_crossed_markets,
    option_quotes,
    put_call_parity,
)
from cli.dev import DEMO_ACCOUNTS
from engines.backfill import connected
from engines.bar_series import targets
from ibkr.connection import ConnectionSettings
from ibkr.errors import one_sentence
from ibkr.universe import parse_bar_spec
from ibsim import GatewayConfig, GatewayThread
from ibsim.cli import load_scenario
from ibsim.clock import ShiftedClock
from live import OrderIntent, submit
from live.config import LiveConfig
from live.reconcile import log as reconcile_log
from live.service import LiveService
from warehouse.catalog import connect_readonly, refresh_catalog

EXAMPLE_QUERIES = (
    "SELECT sec_type, count(*) AS contracts FROM security_master_current "
    "GROUP BY sec_type ORDER BY sec_type",
    "SELECT underlying_symbol, expiry, count(*) AS contracts, min(strike) AS low_strike, "
    "max(strike) AS high_strike FROM option_chains GROUP BY ALL ORDER BY ALL LIMIT 8",
    "SELECT local_symbol, sec_type, bar_size, what_to_show, count(*) AS bars, "
    "count(DISTINCT session_date) AS sessions, min(ts) AS first_bar, max(ts) AS last_bar "
    "FROM bars JOIN security_master_current USING (con_id) GROUP BY ALL ORDER BY ALL",
    'SELECT strike, "right", bid, ask, round(implied_vol, 4) AS iv, round(delta, 3) AS delta, '
    "open_interest FROM option_quotes WHERE underlying_symbol = 'SPY' AND expiry = "
    "(SELECT min(expiry) FROM option_quotes WHERE underlying_symbol = 'SPY') ORDER BY ALL",
    "SELECT p.account, s.local_symbol, p.quantity, p.market_value, p.unrealized_pnl "
    "FROM portfolio p JOIN security_master_current s USING (con_id) ORDER BY ALL",
    "SELECT exec_id, account, side, shares, price, commission FROM executions ORDER BY exec_id",
    "SELECT con_id, count(*) AS bars, min(time) AS first_bar, max(time) AS last_bar, "
    "sum((source = 'refill')::INT) AS refilled FROM live_bars GROUP BY ALL ORDER BY ALL",
    "SELECT key, account, side, shares, price, commission FROM live_fills "
    "WHERE superseded_by IS NULL ORDER BY time DESC LIMIT 5",
)
DEMO_BARS = tuple(
    parse_bar_spec({"bar_size": size, "history": history}, "the demo")
    for size, history in (("1 day", "1y"), ("1 min", "5d"))  # 5d: the last five sessions
)
DEMO_SYMBOLS = ("AAPL", "SPY", "EUR.USD", "BTC", "VFIAX", "91282CJZ5")
# The live segment replays 2024-07-10 from 10:00 New York at ten times the pace.
LIVE_START, LIVE_SPEED, LIVE_SECONDS = datetime(2024, 7, 10, 14, 0, tzinfo=UTC), 10.0, 8.0
LIVE_CONFIG = {
    "streams": [{"symbol": "AAPL", "ticks": True, "bars": True}, {"symbol": "SPY", "bars": True}],
    "flush_every": 0.5,
}


@dataclass(frozen=True)
class DemoResult:
    home: Path
    catalog: Path
    contracts: int
    options: int
    bars: int


def _shortest(path: Path) -> str:
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)


def run_demo_command(args: argparse.Namespace) -> int:
    """`ibw demo`: the demo into `--home`, its last word one sentence whatever failed."""
    console = Console()
    try:
        run_demo(console, Path(args.home).resolve())
    except Exception as exc:
        console.print(f"[red]ibw demo:[/red] {one_sentence(_root_cause(exc))}")
        return 1
    return 0


def _root_cause(exc: BaseException) -> BaseException:
    """Dagster wraps a failed step's exception; users need the one that explains it."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def run_demo(console: Console, home: Path) -> DemoResult:
    resources = {
        "warehouse": WarehouseResource(home=str(home)),
        "universe": UniverseResource.from_env(),
        "snapshot": SnapshotResource(region="none"),  # the embedded gateway keeps no IB reset
    }
    book = load_scenario(DEMO_ACCOUNTS)
    with (
        console.status("Starting the embedded IB Gateway...") as status,
        GatewayThread(GatewayConfig(port=0, book=book)) as gw,
    ):
        resources["ib"] = IBResource(port=gw.port)
        status.update("Resolving the universe into the security master...")
        _materialize([contracts], resources)
        console.print("[green]✓[/green] contracts: the security master is in the warehouse")
        day = datetime.now(ZoneInfo("America/New_York")).date().isoformat()
        status.update(f"Snapshotting the option chains of {day}...")
        _materialize([option_chains], resources, partition_key=day)
        console.print(f"[green]✓[/green] option_chains: the {day} snapshot is in the warehouse")
        status.update(f"Taking the quotes, implied vols and greeks of the {day} chain...")
        checks = [no_crossed_markets, greeks_within_bounds, put_call_parity]
        quoted = _materialize([option_quotes, *checks], resources, partition_key=day)
        [stored] = quoted.asset_materializations_for_node("option_quotes")
        failed = [e.check_name for e in quoted.get_asset_check_evaluations() if not e.passed]
        console.print(
            f"[green]✓[/green] option_quotes: {stored.metadata['dagster/row_count'].value} "
            "options with their implied vols and greeks; "
            + (f"[red]checks failed: {', '.join(failed)}[/red]" if failed else "every check passed")
        )
        status.update("Backfilling daily and 1-min bars of a few contracts...")
        settings = ConnectionSettings("127.0.0.1", gw.port, 120, 10.0)
        with connected(settings, home, "demo") as backfill:
            reports = [backfill.run(t) for t in targets(home, DEMO_BARS, DEMO_SYMBOLS)]
        refresh_catalog(home)
        requests = sum(r.requests for r in reports)
        bars = sum(r.bars for r in reports)
        console.print(
            f"[green]✓[/green] bars: {bars:,} bars of {len(reports)} series in {requests} requests"
        )
        status.update("Taking tonight's account snapshot...")
        _materialize([account_snapshot], resources, partition_key=day)
        console.print(
            f"[green]✓[/green] account snapshot of {day}: positions, account values, portfolio, "
            "P&L, fills with commissions, orders and the FA configuration"
        )
    seeded = SeededOrders(book)
    with console.status("Running the live service (ticks, 5-s bars and an order)..."), seeded:
        counters = _live(home, book)
    console.print(
        f"[green]✓[/green] live: {LIVE_SECONDS:g} s of `ibw live` ({counters.connects} "
        f"connection) on a replay of {LIVE_START:%Y-%m-%d} at {LIVE_SPEED:g}x: ticks and "
        "5-s bars of AAPL and SPY, and a 10-share market order through the journal"
    )
    if seeded.found:
        console.print(
            f"  The service's first reconciliation found {len(seeded.found)} orders at the "
            f"gateway that its journal never sent (permIds {', '.join(map(str, seeded.found))}): "
            "the seeded demo accounts' own orders, placed before the demo started, not errors. "
            "A real login's orders from TWS or another tool show the same way, in "
            "live_differences.",
            soft_wrap=True,
        )
    return _summarize(console, home)


class SeededOrders(logging.Filter):
    """The demo accounts come with orders of their own (a filled BUY, a resting take-profit), so
    the live service's first reconciliation rightly reports them as orders its journal did not
    send. Its warning reads as an error to a new user: the demo holds those lines back while
    the live segment runs and says in its own words what they are. The service is unchanged."""

    def __init__(self, book) -> None:
        super().__init__()
        self.perm_ids = {o.perm_id for o in (*book.open_orders, *book.completed_orders)}
        self.found: list[int] = []

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if not text.startswith("reconciliation difference:"):
            return True
        seeded = [p for p in sorted(self.perm_ids) if f"order permId {p} " in text]
        self.found += seeded
        return not seeded

    def __enter__(self) -> SeededOrders:
        reconcile_log.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        reconcile_log.removeFilter(self)


def _live(home: Path, book):
    """`ibw live` in-process for a few seconds, against a gateway that replays a regular
    session, with one market order sent as an intent through the journal."""
    clock = ShiftedClock(LIVE_START, speed=LIVE_SPEED)
    with GatewayThread(GatewayConfig(port=0, book=book, clock=clock)) as gw:
        settings = ConnectionSettings("127.0.0.1", gw.port, 130, 10.0)
        service = LiveService(settings, home, LiveConfig.parse(LIVE_CONFIG, "the demo"))
        submit(
            OrderIntent(key=f"demo-{secrets.token_hex(4)}", account=book.accounts[0].id,
                        con_id=265598, action="BUY", quantity=10),
            home=home,
        )  # fmt: skip
        return asyncio.run(_for(service, LIVE_SECONDS))


async def _for(service: LiveService, seconds: float):
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    return await service.run(stop)


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _materialize(
    assets: list, resources: dict, partition_key: str | None = None
) -> dg.ExecuteInProcessResult:
    with instance_with_days(*([partition_key] if partition_key else [])) as instance:
        return dg.materialize(
            assets, resources=resources, partition_key=partition_key, run_config=QUIET,
            instance=instance,
        )  # fmt: skip  # raises on failure; run_demo_command turns that into one sentence


def _summarize(console: Console, home: Path) -> DemoResult:
    with connect_readonly(home) as con:
        count_contracts = con.sql("SELECT count(*) FROM security_master_current").fetchall()[0][0]
        count_options = con.sql("SELECT count(*) FROM option_chains").fetchall()[0][0]
        count_bars = con.sql("SELECT count(*) FROM bars").fetchall()[0][0]
        for sql in EXAMPLE_QUERIES:
            relation = con.sql(sql)
            console.print(f"[dim]> {sql}[/dim]")
            table = Table()
            for column in relation.columns:
                table.add_column(column)
            for row in relation.fetchall():
                table.add_row(*(str(v) for v in row))
            console.print(table)
    catalog = home / "warehouse.duckdb"
    console.print(
        f"{count_contracts} contracts, {count_options} option contracts and {count_bars:,} bars "
        f"landed in {home}. "
        f'Query them with `ibw query "SQL"` or open {catalog} read-only '
        f"(duckdb -readonly {_shortest(catalog)})."
    )
    return DemoResult(home, catalog, count_contracts, count_options, count_bars)
