"""The universe domain's jobs and schedules: each trading day's option chains, taken after the
open, and their quotes, taken before the close (IB keeps no history of either, so a day a
schedule misses is lost)."""

import dagster as dg

from assets.trading_days import trading_day_schedule
from assets.universe.option_chains import SNAPSHOT_AT, chain_inside_window, option_chains
from assets.universe.option_quotes import (
    SETTINGS,
    greeks_within_bounds,
    no_crossed_markets,
    option_quotes,
    put_call_parity,
)

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

option_quotes_job = dg.define_asset_job(
    "option_quotes_job",
    selection=dg.AssetSelection.assets(option_quotes)
    | dg.AssetSelection.checks(no_crossed_markets, greeks_within_bounds, put_call_parity),
    description="Today's option quotes, implied vols and greeks, and their checks.",
)


daily_option_quotes = trading_day_schedule(
    "daily_option_quotes",
    option_quotes_job,
    SETTINGS.at,
    f"The day's option quotes at {SETTINGS.at:%H:%M} New York ($IBW_OPTION_QUOTES_AT), on XNYS "
    "trading days (other days are skipped, with the reason).",
)
