"""`live_compaction`: each UTC day's small flush files of the live streams merged into one, by a
daily schedule shortly after the day ends. Its partitions are the UTC days the service wrote
files on (added by the `live_observer` sensor and by the schedule), not every calendar day."""

from datetime import UTC, date, timedelta
from pathlib import Path

import dagster as dg

from assets.live.external import INTRADAY_SPECS, live_bars, live_ticks
from assets.metadata import OWNERS
from assets.resources import WarehouseResource
from assets.trading_days import run_for_day
from warehouse import live_streams

LIVE_DAYS_NAME = "live_days"
LIVE_DAYS = dg.DynamicPartitionsDefinition(name=LIVE_DAYS_NAME)


def days_with_files(home: Path) -> list[date]:
    """The UTC days any appended live dataset holds files for, oldest first."""
    return sorted(
        {day for dataset in live_streams.APPENDED for day in live_streams.days(home, dataset)}
    )


@dg.asset(
    partitions_def=LIVE_DAYS,
    deps=[live_ticks.key, live_bars.key, *(spec.key for spec in INTRADAY_SPECS)],
    group_name="live",
    kinds={"parquet"},
    owners=OWNERS,
    description="Merges a UTC day of each live dataset the service appends to (ticks, bars, "
    "positions, P&L, account values) into one deduplicated file each (safe while the service "
    "writes, and to rerun); one partition per day the service wrote.",
)
def live_compaction(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    metadata: dict[str, dg.RawMetadataValue] = {}
    for dataset in live_streams.APPENDED:
        done = live_streams.compact(warehouse.path, dataset, day)
        context.log.info(
            f"{dataset} {day}: {done.files_before} files merged into {done.files_after}, "
            f"{done.rows} rows kept."
        )
        metadata |= {
            f"{dataset}_files_before": done.files_before,
            f"{dataset}_files_after": done.files_after,
            f"{dataset}_rows": done.rows,
        }
        if done.skipped:
            metadata[f"{dataset}_skipped"] = done.skipped
            context.log.warning(f"{dataset} {day}: {done.skipped}")
    return dg.MaterializeResult(metadata=metadata)


live_compaction_job = dg.define_asset_job(
    "live_compaction_job",
    selection=[live_compaction],
    description="Compacts one UTC day of the live streams.",
)


@dg.schedule(
    name="live_compaction_daily",
    job=live_compaction_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Compacts the live datasets of the UTC day that just ended, if the service "
    "wrote any that day.",
)
def live_compaction_daily(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
) -> dg.RunRequest | dg.SkipReason:
    day = context.scheduled_execution_time.astimezone(UTC).date() - timedelta(days=1)
    if day not in days_with_files(warehouse.path):
        return dg.SkipReason(
            f"The live service wrote no ticks or bars on {day}: nothing to compact."
        )
    return run_for_day(context.instance, LIVE_DAYS_NAME, day)
