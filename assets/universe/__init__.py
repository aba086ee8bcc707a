"""The universe domain: the universe file resolved into the security master (`contracts`) and
each trading day's option chains inside the universe's windows (`option_chains`, its window
check, and the `daily_option_chains` schedule that takes them after the open)."""

import dagster as dg

from assets.universe.contracts import contracts
from assets.universe.option_chains import chain_inside_window, option_chains
from assets.universe.schedules import daily_option_chains, option_chains_job


def definitions() -> dg.Definitions:
    """The universe domain's assets and checks, the chains' job and daily schedule."""
    return dg.Definitions(
        assets=[contracts, option_chains],
        asset_checks=[chain_inside_window],
        jobs=[option_chains_job],
        schedules=[daily_option_chains],
    )
