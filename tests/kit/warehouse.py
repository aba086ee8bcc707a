"""Warehouse sample data: contract observations and option chain frames, the times the
security master observed them, and `ibw query` run in process."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from cli.query import add_query_command

FETCHED = datetime(2024, 7, 10, 21, 0, tzinfo=UTC)
SNAPSHOT = date(2024, 7, 10)
DAY = {"snapshot_date": "2024-07-10"}
# three observations of the security master, a day apart
T1 = datetime(2024, 7, 10, 22, 0, tzinfo=UTC)
T2 = T1 + timedelta(days=1)
T3 = T1 + timedelta(days=2)


def option_chain(snapshot: date = SNAPSHOT, strikes: tuple[float, ...] = (200.0, 210.0, 220.0)):
    """A valid AAPL option chain snapshot: calls expiring 2024-07-19, underlying at 210."""
    expiry, price, n = date(2024, 7, 19), 210.0, len(strikes)
    return pl.DataFrame(
        {
            "snapshot_date": [snapshot] * n,
            "underlying_con_id": [265598] * n,
            "underlying_symbol": ["AAPL"] * n,
            "con_id": [700_000_000 + int(s) for s in strikes],
            "sec_type": ["OPT"] * n,
            "local_symbol": [f"AAPL  240719C00{int(s)}000" for s in strikes],
            "expiry": [expiry] * n,
            "strike": list(strikes),
            "right": ["C"] * n,
            "exchange": ["SMART"] * n,
            "multiplier": ["100"] * n,
            "trading_class": ["AAPL"] * n,
            "underlying_price": [price] * n,
            "days_to_expiry": [(expiry - snapshot).days] * n,
            "moneyness": [s / price for s in strikes],
            "request_id": ["req-chain-1"] * n,
            "fetched_at": [FETCHED] * n,
            "source": ["ibsim"] * n,
        },
        schema_overrides={"days_to_expiry": pl.Int32},
    )


def contracts(symbols: dict[int, str] | None = None, request_id: str = "req-1") -> pl.DataFrame:
    """An observation of stock contracts for the security master: conId -> symbol."""
    symbols = symbols or {265598: "AAPL", 756733: "SPY"}
    n = len(symbols)
    return pl.DataFrame(
        {
            "con_id": list(symbols),
            "symbol": list(symbols.values()),
            "local_symbol": list(symbols.values()),
            "sec_type": ["STK"] * n,
            "exchange": ["SMART"] * n,
            "primary_exchange": ["NASDAQ"] * n,
            "currency": ["USD"] * n,
            "multiplier": pl.Series([None] * n, dtype=pl.String),
            "expiry": pl.Series([None] * n, dtype=pl.Date),
            "trading_class": ["NMS"] * n,
            "min_tick": [0.01] * n,
            "time_zone_id": ["US/Eastern"] * n,
            "trading_hours": ["20240710:0400-20240710:2000"] * n,
            "liquid_hours": ["20240710:0930-20240710:1600"] * n,
            "long_name": [f"{s} INC" for s in symbols.values()],
            "universe_entry": list(symbols.values()),
            "request_id": [request_id] * n,
            "fetched_at": [FETCHED] * n,
            "source": ["ibsim"] * n,
        }
    )


def run_query(*argv: str) -> int:
    """`ibw query ARGV...`, in process, with only the query command's parser."""
    parser = argparse.ArgumentParser(prog="ibw")
    add_query_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["query", *argv])
    return args.run(args)


def query(home: Path, sql: str) -> list[tuple]:
    """`sql` on the warehouse's DuckDB catalog, read-only, as an analyst runs it."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()
