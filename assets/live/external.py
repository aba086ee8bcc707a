"""The datasets the `ibw live` service writes, declared to Dagster as external assets: Dagster
never materializes them, but they sit in the lineage graph and the observer reports on them."""

import dagster as dg

SERVICE = "the `ibw live` service"

live_ticks = dg.AssetSpec(
    "live_ticks",
    description=f"Level-1 ticks (bid, ask, last, sizes, volume) that {SERVICE} streams from "
    "reqMktData and flushes to lake/live_ticks/day=YYYY-MM-DD/ every second.",
    kinds={"ib"},
    group_name="live",
)
live_bars = dg.AssetSpec(
    "live_bars",
    description=f"5-second bars that {SERVICE} streams from reqRealTimeBars (TRADES; MIDPOINT "
    "for FX and indices), gaps refilled from history; the catalog view shows each bar once.",
    kinds={"ib"},
    group_name="live",
)
live_orders = dg.AssetSpec(
    "live_orders",
    description=f"The order journal of {SERVICE}: every intent and its IB order states.",
    kinds={"ib"},
    group_name="live",
)
live_fills = dg.AssetSpec(
    "live_fills",
    description=f"Executions and commissions of the orders {SERVICE} placed.",
    kinds={"ib"},
    group_name="live",
)
live_differences = dg.AssetSpec(
    "live_differences",
    description=f"Where {SERVICE}'s reconciliation found the journal and IB disagreeing "
    "(unknown orders, fills without an intent, lost orders, positions): kept, never hidden.",
    kinds={"ib"},
    group_name="live",
)
LIVE_SPECS = [live_ticks, live_bars, live_orders, live_fills, live_differences]
