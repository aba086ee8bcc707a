"""The nightly snapshot schedule: after IB's daily reset window in the configured region."""

from zoneinfo import ZoneInfo

import dagster as dg

from assets.snapshots import snapshot_job
from ibkr.restarts import snapshot_time

NEW_YORK = ZoneInfo("America/New_York")


def build_snapshot_schedule(region: str) -> dg.ScheduleDefinition:
    """Every day at the end of `region`'s reset window plus a margin, for New York's day."""
    at, zone = snapshot_time(region)

    @dg.schedule(
        name="nightly_account_snapshot",
        job=snapshot_job,
        cron_schedule=f"{at.minute} {at.hour} * * *",
        execution_timezone=zone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"The account snapshot after IB's {region.replace('_', ' ')} reset.",
    )
    def nightly_account_snapshot(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = context.scheduled_execution_time.astimezone(NEW_YORK).date()
        return dg.RunRequest(partition_key=day.isoformat())

    return nightly_account_snapshot
