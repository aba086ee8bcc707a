"""The account snapshot's jobs and schedules: the whole snapshot after IB's daily reset window
in the configured region, and the day's fills just before IB's day turns at midnight New York
(IB reports fills and completed orders for its current day only)."""

from zoneinfo import ZoneInfo

import dagster as dg

from assets.account.assets import account_snapshot
from ibkr.restarts import snapshot_time

NEW_YORK = ZoneInfo("America/New_York")
FILLS = ("executions", "commissions", "completed_orders")  # today's only, in IB's eyes
snapshot_job = dg.define_asset_job(
    "account_snapshot_job", selection=dg.AssetSelection.assets(account_snapshot)
)
fills_job = dg.define_asset_job("day_fills_job", selection=dg.AssetSelection.assets(*FILLS))


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


def build_fills_schedule() -> dg.ScheduleDefinition:
    """Every day at 23:50 New York: the day's executions, commissions and completed orders."""

    @dg.schedule(
        name="end_of_day_fills",
        job=fills_job,
        cron_schedule="50 23 * * *",
        execution_timezone="America/New_York",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="The day's fills and completed orders, before IB's day turns at midnight.",
    )
    def end_of_day_fills(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = context.scheduled_execution_time.astimezone(NEW_YORK).date()
        return dg.RunRequest(partition_key=day.isoformat())

    return end_of_day_fills
