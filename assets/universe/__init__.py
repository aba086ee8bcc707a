"""The universe domain: the universe file resolved into the security master (`contracts`) and
each trading day's option chains inside the universe's windows (`option_chains`, its window
check, and the `daily_option_chains` schedule that takes them after the open) and their quotes
(`option_quotes`, its checks, and the `daily_option_quotes` schedule before the close)."""

import dagster as dg

from assets.universe.contracts import contracts
from assets.universe.option_chains import chain_inside_window, option_chains
from assets.universe.option_quotes import (
    greeks_within_bounds,
    no_crossed_markets,
    option_quotes,
    put_call_parity,
)
from assets.universe.schedules import (
    daily_option_chains,
    daily_option_quotes,
    option_chains_job,
    option_quotes_job,
)


def definitions() -> dg.Definitions:
    """The universe domain's assets and checks, the chains' and quotes' jobs and schedules."""
    return dg.Definitions(
        assets=[contracts, option_chains, option_quotes],
        asset_checks=[
            chain_inside_window,
            no_crossed_markets,
            greeks_within_bounds,
            put_call_parity,
        ],
        jobs=[option_chains_job, option_quotes_job],
        schedules=[daily_option_chains, daily_option_quotes],
    )
