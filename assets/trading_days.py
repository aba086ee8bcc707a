"""Daily partitions that exist only where there can be data: the New York trading days (XNYS)
from the day the platform first ran, not every calendar day since a fixed start.

Option chains and account snapshots share one dynamic partition set, `trading_days`. Its keys
are ISO dates ("2026-12-07"); the `trading_day_partitions` sensor adds today's key on its first
tick of each trading day (so "Materialize" works for today right after `ibw dev` starts), and the
domains' schedules add the key of the day they run for, since a schedule cannot ask the daemon to
(only sensors return dynamic partition requests in Dagster 1.13). A non-trading day is skipped
with the reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time

import dagster as dg

from ibfacts.resets import NEW_YORK, ib_day
from ibfacts.venues import US_STOCKS
from ibkr.sessions import expected_sessions

TRADING_DAYS_NAME = "trading_days"
TRADING_DAYS = dg.DynamicPartitionsDefinition(name=TRADING_DAYS_NAME)


def is_trading_day(day: date) -> bool:
    """Whether New York's stock exchanges (the XNYS calendar) hold a session on `day`."""
    return bool(expected_sessions(US_STOCKS, True, day, day))


def not_a_trading_day(day: date) -> str:
    return f"{day} is not an XNYS trading day."


def is_gateway_today(context: dg.AssetExecutionContext, gateway_today: date, what: str) -> bool:
    """Whether the run's day is the gateway's today. IB keeps no history of `what`, so another
    day stores nothing, which the run's log says as a warning: a failure would turn the asset and
    its checks red although its last good day is as it was."""
    day = date.fromisoformat(context.partition_key)
    if day != gateway_today:
        context.log.warning(
            f"IB keeps no history of {what}, so only the gateway's today ({gateway_today}) can "
            f"be snapshotted, not {day}: nothing was stored; materialize that partition."
        )
    return day == gateway_today


def run_for_day(instance: dg.DagsterInstance, partitions: str, day: date) -> dg.RunRequest:
    """A run of `day`'s partition of the dynamic partitions named `partitions`, its key added
    first when it is new."""
    key = day.isoformat()
    if not instance.has_dynamic_partition(partitions, key):
        instance.add_dynamic_partitions(partitions, [key])
    return dg.RunRequest(partition_key=key)


def trading_day_schedule(
    name: str,
    job: dg.UnresolvedAssetJobDefinition,
    at: time,
    description: str,
    zone: str = str(NEW_YORK),
) -> dg.ScheduleDefinition:
    """A schedule that runs `job` every day at `at` in `zone` for the New York day of its tick,
    on XNYS trading days only (other days are skipped, with the reason)."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=f"{at.minute} {at.hour} * * *",
        execution_timezone=zone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def trading_day_run(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        day = ib_day(context.scheduled_execution_time)
        if not is_trading_day(day):
            return dg.SkipReason(not_a_trading_day(day))
        return run_for_day(context.instance, TRADING_DAYS_NAME, day)

    return trading_day_run


def today_partition(instance: dg.DagsterInstance, today: date) -> dg.SensorResult | dg.SkipReason:
    """The request that adds `today` to `trading_days`, or why nothing is added."""
    key = today.isoformat()
    if not is_trading_day(today):
        return dg.SkipReason(not_a_trading_day(today))
    if instance.has_dynamic_partition(TRADING_DAYS_NAME, key):
        return dg.SkipReason(f"{key} is already a partition of trading_days.")
    return dg.SensorResult(dynamic_partitions_requests=[TRADING_DAYS.build_add_request([key])])


@dg.sensor(
    name="trading_day_partitions",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds today's New York day to the trading_days partitions of option_chains and "
    "the account snapshot on its first tick of each XNYS trading day.",
)
def trading_day_partitions(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    return today_partition(context.instance, ib_day(datetime.now(NEW_YORK)))


@contextmanager
def per_partition_checks() -> Iterator[None]:
    """Where checks are declared with a partitions_def: one result per day, so a warning on one
    day is never overwritten by the next day's. Dagster 1.13 warns on each declaration that this
    is a preview; the project relies on it knowingly, so the warning is not repeated on every
    load of the code location."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="Specifying a partitions_def on an AssetCheckSpec",
            category=dg.PreviewWarning,
        )
        yield


def daily_check(
    *, asset: dg.AssetsDefinition, **kwargs
) -> Callable[[Callable[..., dg.AssetCheckResult]], dg.AssetChecksDefinition]:
    """`dg.asset_check` on `asset`, evaluated per partition of it."""

    def decorate(fn: Callable[..., dg.AssetCheckResult]) -> dg.AssetChecksDefinition:
        with per_partition_checks():
            return dg.asset_check(asset=asset, partitions_def=asset.partitions_def, **kwargs)(fn)

    return decorate


@contextmanager
def instance_with_days(*days: str) -> Iterator[dg.DagsterInstance]:
    """An ephemeral instance whose `trading_days` hold `days`: what `dg.materialize` needs to run
    a day's partition outside a Dagster deployment (the demo, benchmarks, tests)."""
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(TRADING_DAYS_NAME, list(days))
        yield instance


def definitions() -> dg.Definitions:
    """The sensor that adds each trading day's partition (shared by the universe and account
    domains, so it is loaded once, beside them)."""
    return dg.Definitions(sensors=[trading_day_partitions])
