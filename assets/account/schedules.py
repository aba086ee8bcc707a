"""The account snapshot's jobs, schedules and freshness: the whole snapshot after IB's daily
reset window in the configured region, and the day's fills just before IB's day turns at
midnight New York (IB reports fills and completed orders for its current day only), both on
XNYS trading days; a snapshot missing an hour after its schedule turns the assets' freshness
red."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from assets.account.assets import account_snapshot
from assets.trading_days import trading_day_schedule
from ibfacts.resets import NEW_YORK
from ibkr.restarts import NO_RESET, RESET_WINDOWS, snapshot_time

FILLS = ("executions", "commissions", "completed_orders")  # today's only, in IB's eyes
FILLS_AT = time(23, 50)  # New York, before IB's day turns
FRESH_WITHIN = timedelta(hours=1)  # after the nightly schedule's time
snapshot_job = dg.define_asset_job(
    "account_snapshot_job",
    selection=dg.AssetSelection.assets(account_snapshot),
    description="The whole account snapshot of the day: twelve datasets on one connection.",
)
fills_job = dg.define_asset_job(
    "day_fills_job",
    selection=dg.AssetSelection.assets(*FILLS),
    description="The day's executions, commissions and completed orders, before IB forgets them.",
)


def snapshot_description(region: str) -> str:
    """When the nightly snapshot runs, and why then, in words."""
    at, zone = snapshot_time(region)
    if region == NO_RESET:
        return (
            "The account snapshot on XNYS trading days: the embedded gateway has no reset "
            f"window; the snapshot runs at {at:%H:%M} New York."
        )
    window = RESET_WINDOWS[region]
    return (
        f"The account snapshot on XNYS trading days at {at:%H:%M} {zone}, after IB's "
        f"{region.replace('_', ' ')} reset window ({window.start:%H:%M}-{window.end:%H:%M})."
    )


def build_snapshot_schedule(region: str) -> dg.ScheduleDefinition:
    """Every day at the end of `region`'s reset window plus a margin, for New York's day."""
    at, zone = snapshot_time(region)
    return trading_day_schedule(
        "nightly_account_snapshot", snapshot_job, at, snapshot_description(region), zone
    )


end_of_day_fills = trading_day_schedule(
    "end_of_day_fills",
    fills_job,
    FILLS_AT,
    f"The day's fills and completed orders at {FILLS_AT:%H:%M} New York, before IB's day turns "
    "at midnight, on XNYS trading days.",
)


def snapshot_freshness(region: str) -> dg.FreshnessPolicy:
    """Red when the nightly snapshot of a weekday (New York's) has not landed within an hour of
    its schedule. Cron knows no holidays: on an XNYS holiday it turns red until the next run."""
    at, zone = snapshot_time(region)
    local = datetime.combine(date(2024, 1, 1), at, ZoneInfo(zone))  # a Monday
    shift = (local.date() - local.astimezone(NEW_YORK).date()).days  # Asia runs a day ahead
    deadline = local + FRESH_WITHIN
    return dg.FreshnessPolicy.cron(
        deadline_cron=f"{deadline.minute} {deadline.hour} * * {1 + shift}-{5 + shift}",
        lower_bound_delta=FRESH_WITHIN,
        timezone=zone,
    )
