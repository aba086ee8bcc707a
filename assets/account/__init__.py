"""The account domain: the nightly account snapshot as Dagster assets (`assets`: one asset per
dataset, one partition per New York trading day, a check each) and the jobs, schedules and
freshness that take and watch it (`schedules`)."""

import dagster as dg

from assets.account.assets import account_snapshot
from assets.account.schedules import (
    build_snapshot_schedule,
    end_of_day_fills,
    fills_job,
    snapshot_freshness,
    snapshot_job,
)


def definitions(region: str) -> dg.Definitions:
    """The account domain, its nightly snapshot scheduled after IB's reset in `region` and
    expected within an hour of it."""
    freshness = snapshot_freshness(region)
    return dg.Definitions(
        assets=[
            account_snapshot.map_asset_specs(
                lambda spec: spec.replace_attributes(freshness_policy=freshness)
            )
        ],
        jobs=[snapshot_job, fills_job],
        schedules=[build_snapshot_schedule(region), end_of_day_fills],
    )
