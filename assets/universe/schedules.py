"""The universe domain's job and schedule: each trading day's option chains, taken after the
open (IB keeps no history of option chains, so a day the schedule misses is lost)."""

import dagster as dg

from assets.trading_days import trading_day_schedule
from assets.universe.option_chains import SNAPSHOT_AT, chain_inside_window, option_chains

option_chains_job = dg.define_asset_job(
    "option_chains_job",
    selection=dg.AssetSelection.assets(option_chains)
    | dg.AssetSelection.checks(chain_inside_window),
    description="Today's option chains inside the universe's windows, and their window check.",
)


daily_option_chains = trading_day_schedule(
    "daily_option_chains",
    option_chains_job,
    SNAPSHOT_AT,
    f"The day's option chains at {SNAPSHOT_AT:%H:%M} New York, after the open, on XNYS trading "
    "days (other days are skipped, with the reason).",
)
