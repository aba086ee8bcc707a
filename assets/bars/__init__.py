"""The bars domain: the `bars` asset (one partition per bar series and contract) with its checks
(`asset`: gaps, duplicates, OHLC, and the ledger against the lake) and the sensor that requests
its runs within IB's pacing budget (`backfill_sensor`)."""

import dagster as dg

from assets.bars.asset import build_bars_asset, build_lake_check
from assets.bars.backfill_sensor import build_backfill_sensor
from ibkr.universe import BarSpec


def definitions(specs: tuple[BarSpec, ...]) -> dg.Definitions:
    """The bars domain for the universe's bar series `specs`."""
    bars = build_bars_asset(specs)
    return dg.Definitions(
        assets=[bars],
        asset_checks=[build_lake_check(bars)],
        sensors=[build_backfill_sensor(bars)],
    )
