"""Option chains: what the window costs in contracts and requests, against the naive chain.

Runs the `contracts` and `option_chains` assets through Dagster against an embedded gateway
pinned to 2024-07-10 and prints, for the day's snapshot:
  qualified / in window   (goal 1.0: nothing qualified that the window does not need)
  requests / qualified    (close to 1: one contract-details request per contract, plus a few)
  qualified / full chain  (the baseline: "every strike of every expiry", as naive scripts do)

    uv run python bench/option_chains.py
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from assets.resources import IBResource, UniverseResource, WarehouseResource
from assets.trading_days import instance_with_days
from assets.universe.contracts import contracts
from assets.universe.option_chains import option_chains
from ibsim import GatewayConfig, GatewayThread, ManualClock
from ibsim.market.catalog import Catalog

NOW = datetime(2024, 7, 10, 15, 0, tzinfo=UTC)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def full_chain_size(symbols: list[str]) -> int:
    """Every listed contract of the underlyings on that day: the naive baseline."""
    options = Catalog(ManualClock(NOW)).options().values()
    return sum(1 for o in options if o.symbol in symbols)


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        GatewayThread(
            GatewayConfig(port=0, clock=ManualClock(NOW), soft_throttle_bars_per_second=0)
        ) as gateway,
        instance_with_days(NOW.date().isoformat()) as instance,
    ):
        resources = {
            "ib": IBResource(port=gateway.port),
            "warehouse": WarehouseResource(home=str(Path(tmp) / "ibw")),
            "universe": UniverseResource(),
        }
        dg.materialize([contracts], resources=resources, run_config=QUIET)
        result = dg.materialize(
            [option_chains],
            resources=resources,
            partition_key=NOW.date().isoformat(),
            run_config=QUIET,
            instance=instance,
        )
    meta = {
        k: v.value
        for k, v in result.asset_materializations_for_node("option_chains")[0].metadata.items()
    }
    in_window, qualified, requests = (
        meta["contracts_in_window"],
        meta["contracts_qualified"],
        meta["requests"],
    )
    full = full_chain_size(list(meta["by_underlying"]))
    print(f"snapshot {NOW.date()}  underlyings {', '.join(meta['by_underlying'])}")
    print(
        f"contracts in window {in_window}, qualified {qualified}, requests {requests}, "
        f"full chain {full}"
    )
    print(f"qualified / in window   {qualified / in_window:.3f}   (goal 1.0)")
    print(f"requests / qualified    {requests / qualified:.3f}")
    print(f"qualified / full chain  {qualified / full:.3f}   (baseline: every strike and expiry)")


if __name__ == "__main__":
    main()
