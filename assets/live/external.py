"""The datasets the `ibw live` service writes, declared to Dagster as external assets: Dagster
never materializes them, but they sit in the lineage graph with their columns and DuckDB views,
and the observer reports on them and evaluates their checks (`observer`)."""

import dagster as dg

from assets.metadata import OWNERS, dataset_metadata
from warehouse.live_schemas import (
    ACCOUNT_VALUES,
    BARS,
    DIFFERENCES,
    FILLS,
    ORDERS,
    PNL,
    POSITIONS,
    TICKS,
)

SERVICE = "the `ibw live` service"


def _written_by_the_service(dataset: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        dataset,
        description=description,
        kinds={"ib", "parquet"},
        group_name="live",
        owners=OWNERS,
        metadata=dataset_metadata(dataset),
    )


live_ticks = _written_by_the_service(
    TICKS,
    f"Level-1 ticks (bid, ask, last, sizes, volume) that {SERVICE} streams from reqMktData and "
    "flushes to lake/live_ticks/day=YYYY-MM-DD/ every second.",
)
live_bars = _written_by_the_service(
    BARS,
    f"5-second bars that {SERVICE} streams from reqRealTimeBars (TRADES; MIDPOINT for FX and "
    "indices), gaps refilled from history; the catalog view shows each bar once.",
)
live_orders = _written_by_the_service(
    ORDERS, f"The order journal of {SERVICE}: every intent and its IB order states."
)
live_fills = _written_by_the_service(
    FILLS, f"Executions and commissions of the orders {SERVICE} placed."
)
live_differences = _written_by_the_service(
    DIFFERENCES,
    f"Where {SERVICE}'s reconciliation found the journal and IB disagreeing (unknown orders, "
    "fills without an intent, lost orders, positions): kept, never hidden.",
)
live_positions = _written_by_the_service(
    POSITIONS,
    f"Every account's positions through the day as IB pushes them to {SERVICE} (a row per "
    "change, at most one per key per flush), and an FA master's sums per contract.",
)
live_pnl = _written_by_the_service(
    PNL,
    f"Daily, unrealized and realized P&L per account and per position from IB's reqPnL and "
    f"reqPnLSingle, as {SERVICE} hears it (about once a second while the market moves).",
)
live_account_values = _written_by_the_service(
    ACCOUNT_VALUES,
    f"Account values (NetLiquidation, margins, the ledger per currency) through the day, as "
    f"IB sends them to {SERVICE} on every change and every three minutes.",
)
INTRADAY_SPECS = [live_positions, live_pnl, live_account_values]
LIVE_SPECS = [live_ticks, live_bars, live_orders, live_fills, live_differences, *INTRADAY_SPECS]
