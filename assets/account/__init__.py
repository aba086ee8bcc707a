"""The account domain: the nightly account snapshot as Dagster assets (`assets`: one asset per
dataset, one partition per New York day) and the jobs and schedules that take it (`schedules`)."""

import dagster as dg

from assets.account.assets import account_snapshot
from assets.account.schedules import (
    build_fills_schedule,
    build_snapshot_schedule,
    fills_job,
    snapshot_job,
)


def definitions(region: str) -> dg.Definitions:
    """The account domain, its nightly snapshot scheduled after IB's reset in `region`."""
    return dg.Definitions(
        assets=[account_snapshot],
        jobs=[snapshot_job, fills_job],
        schedules=[build_snapshot_schedule(region), build_fills_schedule()],
    )
