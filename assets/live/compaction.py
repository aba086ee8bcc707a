"""`live_compaction`: each UTC day's small flush files of the live streams merged into one,
by a daily schedule shortly after the day ends."""

from datetime import UTC, date, timedelta

import dagster as dg

from assets.live.external import live_bars, live_ticks
from assets.resources import WarehouseResource
from warehouse import live_streams

COMPACTION_START = "2024-01-01"

daily_utc = dg.DailyPartitionsDefinition(start_date=COMPACTION_START, timezone="UTC")


@dg.asset(
    partitions_def=daily_utc,
    deps=[live_ticks.key, live_bars.key],
    group_name="live",
    kinds={"parquet"},
    description="Merges a UTC day of live_ticks and live_bars into one deduplicated file each "
    "(safe while the service writes, and to rerun).",
)
def live_compaction(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    metadata: dict[str, dg.RawMetadataValue] = {}
    for dataset in (live_streams.TICKS, live_streams.BARS):
        done = live_streams.compact(warehouse.path, dataset, day)
        metadata |= {
            f"{dataset}_files_before": done.files_before,
            f"{dataset}_files_after": done.files_after,
            f"{dataset}_rows": done.rows,
        }
        if done.skipped:
            metadata[f"{dataset}_skipped"] = done.skipped
            context.log.warning(f"{dataset} {day}: {done.skipped}")
    return dg.MaterializeResult(metadata=metadata)


live_compaction_job = dg.define_asset_job("live_compaction_job", selection=[live_compaction])


@dg.schedule(
    name="live_compaction_daily",
    job=live_compaction_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Compacts the live datasets of the UTC day that just ended.",
)
def live_compaction_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.astimezone(UTC).date() - timedelta(days=1)
    return dg.RunRequest(partition_key=day.isoformat())
