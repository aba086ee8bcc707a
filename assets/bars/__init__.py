"""The bars domain: the `bars` asset (one partition per contract, `partitions`) with its checks
per partition (`asset`: gaps, duplicates, OHLC, the ledger against the lake), the named job
`bars_job` its runs use, and the sensor that requests them in batches within IB's pacing budget
(`backfill_sensor`)."""

import dagster as dg

from assets.bars.asset import CONTRACTS_PER_RUN, build_bars_asset
from assets.bars.backfill_sensor import CONTRACTS, build_backfill_sensor


def definitions(contracts_per_run: int = CONTRACTS_PER_RUN) -> dg.Definitions:
    """The bars domain, its backfills batched `contracts_per_run` contracts a run."""
    bars = build_bars_asset(contracts_per_run)
    bars_job = dg.define_asset_job(
        "bars_job",
        selection=[bars],
        description="Fills the missing sessions of every bar series of a range of contracts.",
    )
    bootstrap_job = dg.define_asset_job(
        "bars_bootstrap_job",
        selection=[CONTRACTS],
        description="Resolves the universe into the security master on a fresh warehouse, so "
        "the bars backfill has contracts to fill (requested by the `bars_backfill` sensor).",
    )
    return dg.Definitions(
        assets=[bars],
        jobs=[bars_job, bootstrap_job],
        sensors=[build_backfill_sensor(bars, bars_job, bootstrap_job, contracts_per_run)],
    )
