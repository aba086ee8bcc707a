"""`ibw demo`: the whole first data path on a fresh machine, against its own embedded gateway.

Starts the embedded gateway on a free port (with the demo accounts: an FA master and two
sub-accounts), materializes the universe and today's option chains through Dagster (in-process)
into $IBW_HOME, backfills a few contracts' daily and 1-min bars the way `ibw backfill` does,
takes tonight's account snapshot, then shows what landed and how to query it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
from rich.console import Console
from rich.table import Table

from assets.backfill import connected
from assets.bar_series import targets
from assets.contracts import contracts
from assets.option_chains import option_chains
from assets.resources import IBResource, SnapshotResource, UniverseResource, WarehouseResource
from assets.snapshots import account_snapshot
from ibkr.connection import ConnectionSettings
from ibkr.universe import BarSpec
from ibsim import GatewayConfig, GatewayThread
from ibsim.cli import load_scenario
from pipelines.dev import DEMO_ACCOUNTS
from warehouse.catalog import connect_readonly, refresh_catalog

EXAMPLE_QUERIES = (
    "SELECT sec_type, count(*) AS contracts FROM security_master_current "
    "GROUP BY sec_type ORDER BY sec_type",
    "SELECT underlying_symbol, expiry, count(*) AS contracts, min(strike) AS low_strike, "
    "max(strike) AS high_strike FROM option_chains GROUP BY ALL ORDER BY ALL LIMIT 8",
    "SELECT local_symbol, bar_size, count(*) AS bars, count(DISTINCT session_date) AS sessions, "
    "min(ts) AS first_bar, max(ts) AS last_bar FROM bars JOIN security_master_current "
    "USING (con_id) GROUP BY ALL ORDER BY ALL",
    "SELECT p.account, s.local_symbol, p.quantity, p.market_value, p.unrealized_pnl "
    "FROM portfolio p JOIN security_master_current s USING (con_id) ORDER BY ALL",
    "SELECT exec_id, account, side, shares, price, commission FROM executions ORDER BY exec_id",
)
DEMO_BARS = (BarSpec("1 day", 365), BarSpec("1 min", 5))
DEMO_SYMBOLS = ("AAPL", "SPY", "EUR.USD")


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
    return _summarize(console, home)


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _materialize(assets: list, resources: dict, partition_key: str | None = None) -> None:
    dg.materialize(
        assets, resources=resources, partition_key=partition_key, run_config=QUIET
    )  # raises on failure; the CLI turns that into one sentence


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
