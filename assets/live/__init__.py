"""The live domain: the `ibw live` service's datasets as Dagster sees them.

The service (a long-running process, not a Dagster run) writes `live_ticks`, `live_bars`,
`live_orders`, `live_fills` and `live_differences`; Dagster declares them as external assets
(`external`) so they sit in the lineage graph, a sensor observes them every minute and evaluates
their checks from the service's health file (`observer`), and `live_compaction` merges each UTC
day's small flush files into one, shortly after the day ends (`compaction`).
"""

import dagster as dg

from assets.live.compaction import live_compaction, live_compaction_daily, live_compaction_job
from assets.live.external import LIVE_SPECS
from assets.live.observer import live_checks, live_observer


def definitions() -> dg.Definitions:
    """The live domain's external assets and their checks, compaction, its job and schedule,
    and the observer."""
    return dg.Definitions(
        assets=[*LIVE_SPECS, live_compaction],
        asset_checks=[live_checks],
        jobs=[live_compaction_job],
        schedules=[live_compaction_daily],
        sensors=[live_observer],
    )
