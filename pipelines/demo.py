"""`ibw demo`: start an embedded gateway on a free port and fetch AAPL bars through ib_async."""

from __future__ import annotations

from dataclasses import dataclass

from ib_async import Stock
from rich.console import Console
from rich.table import Table

from ibkr.connection import ConnectionSettings, connect
from ibsim import GatewayConfig, GatewayThread


@dataclass(frozen=True)
class DemoResult:
    port: int
    con_id: int
    bars: int
    first: str
    last: str


def run_demo(console: Console) -> DemoResult:
    with (
        console.status("Starting the embedded IB Gateway..."),
        GatewayThread(GatewayConfig(port=0)) as gateway,
    ):
        ib = connect(ConnectionSettings(port=gateway.port, client_id=1))
        try:
            aapl = Stock("AAPL", "SMART", "USD")
            ib.qualifyContracts(aapl)
            with console.status("Fetching two sessions of 5-minute AAPL bars..."):
                bars = ib.reqHistoricalData(
                    aapl, "", "2 D", "5 mins", "TRADES", useRTH=True, formatDate=2, timeout=60
                )
        finally:
            ib.disconnect()
    table = Table(title=f"AAPL (conId {aapl.conId}), last 5-minute bars")
    for name in ("time (UTC)", "open", "high", "low", "close", "volume"):
        table.add_column(name, justify="right")
    for bar in bars[-8:]:
        table.add_row(f"{bar.date:%Y-%m-%d %H:%M}", *(f"{x:,.2f}" for x in
                      (bar.open, bar.high, bar.low, bar.close)), f"{bar.volume:,.0f}")  # fmt: skip
    console.print(table)
    return DemoResult(
        gateway.port,
        aapl.conId,
        len(bars),
        f"{bars[0].date:%Y-%m-%d %H:%M}" if bars else "-",
        f"{bars[-1].date:%Y-%m-%d %H:%M}" if bars else "-",
    )
