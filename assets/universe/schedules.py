"""The universe domain's job and schedule: each trading day's option chains, taken after the
open (IB keeps no history of option chains, so a day the schedule misses is lost)."""

import dagster as dg

from assets.trading_days import NEW_YORK, trading_day_run
from assets.universe.option_chains import SNAPSHOT_AT, chain_inside_window, option_chains

option_chains_job = dg.define_asset_job(
    "option_chains_job",
    selection=dg.AssetSelection.assets(option_chains)
    | dg.AssetSelection.checks(chain_inside_window),
    description="Today's option chains inside the universe's windows, and their window check.",
)


@dg.schedule(
    name="daily_option_chains",
    job=option_chains_job,
    cron_schedule=f"{SNAPSHOT_AT.minute} {SNAPSHOT_AT.hour} * * *",
    execution_timezone=str(NEW_YORK),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"The day's option chains at {SNAPSHOT_AT:%H:%M} New York, after the open, "
    "on XNYS trading days (other days are skipped, with the reason).",
)
def daily_option_chains(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    return trading_day_run(context)
