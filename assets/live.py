"""The live service's datasets as Dagster sees them: external assets, observed, and compacted.

The `ibw live` service (a long-running process, not a Dagster run) writes `live_ticks`,
`live_bars`, `live_orders`, `live_fills` and `live_differences`; Dagster declares them as
external assets so they sit in the lineage graph, a sensor observes the two streams every
minute (lag, today's rows and files, the service's own health file), and `live_compaction`
merges each UTC day's small flush files into one, shortly after the day ends.
"""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from assets.resources import WarehouseResource
from warehouse import live_streams

SERVICE = "the `ibw live` service"
# Written by the service (live.service.health_path); assets may not import live.
HEALTH_FILE = Path("live") / "health.json"
HEALTH_STALE_AFTER = timedelta(minutes=2)  # the service rewrites it every few seconds
COMPACTION_START = "2024-01-01"

live_ticks = dg.AssetSpec(
    "live_ticks",
    description=f"Level-1 ticks (bid, ask, last, sizes, volume) that {SERVICE} streams from "
    "reqMktData and flushes to lake/live_ticks/day=YYYY-MM-DD/ every second.",
    kinds={"ib"},
    group_name="live",
)
live_bars = dg.AssetSpec(
    "live_bars",
    description=f"5-second bars that {SERVICE} streams from reqRealTimeBars (TRADES; MIDPOINT "
    "for FX and indices), gaps refilled from history; the catalog view shows each bar once.",
    kinds={"ib"},
    group_name="live",
)
live_orders = dg.AssetSpec(
    "live_orders",
    description=f"The order journal of {SERVICE}: every intent and its IB order states.",
    kinds={"ib"},
    group_name="live",
)
live_fills = dg.AssetSpec(
    "live_fills",
    description=f"Executions and commissions of the orders {SERVICE} placed.",
    kinds={"ib"},
    group_name="live",
)
live_differences = dg.AssetSpec(
    "live_differences",
    description=f"Where {SERVICE}'s reconciliation found the journal and IB disagreeing "
    "(unknown orders, fills without an intent, lost orders, positions): kept, never hidden.",
    kinds={"ib"},
    group_name="live",
)
LIVE_SPECS = [live_ticks, live_bars, live_orders, live_fills, live_differences]
OBSERVED = {live_ticks.key: live_streams.TICKS, live_bars.key: live_streams.BARS}


def read_health(home: Path, now: datetime) -> tuple[str, dict]:
    """(the service's state in words, its health file) from `$IBW_HOME/live/health.json`."""
    path = home / HEALTH_FILE
    try:
        health = json.loads(path.read_text())
    except FileNotFoundError:
        return "service not running (no health file yet: start `ibw live`)", {}
    except (OSError, ValueError):
        return "service state unknown (its health file cannot be read)", {}
    try:
        written = datetime.fromisoformat(health["written_at"])
    except (KeyError, TypeError, ValueError):
        return "service state unknown (its health file has no written_at)", health
    age = now - written
    if age > HEALTH_STALE_AFTER:
        return f"service not running (last health {age.total_seconds():.0f} s ago)", health
    return ("running, connected" if health.get("connected") else "running, disconnected"), health


def observe(home: Path, now: datetime) -> list[dg.AssetObservation]:
    """One observation per live stream dataset: lag, today's rows and files, stream health."""
    state, health = read_health(home, now)
    streams = health.get("streams", [])
    observations = []
    for key, dataset in OBSERVED.items():
        today = live_streams.summarize_day(home, dataset, now.date())
        newest = today.newest
        if newest is None and (held := live_streams.days(home, dataset)):
            newest = live_streams.summarize_day(home, dataset, held[-1]).newest
        metadata: dict[str, dg.RawMetadataValue] = {
            "service": state,
            "rows_today": today.rows,
            "files_today": today.files,
            "newest": newest.isoformat() if newest else "no rows yet",
            "lag_seconds": (
                round((now - newest).total_seconds(), 3) if newest else dg.MetadataValue.null()
            ),
            "streams": dg.MetadataValue.json(streams),
        }
        observations.append(dg.AssetObservation(key, metadata=metadata))
    return observations


@dg.sensor(
    name="live_observer",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Observes live_ticks and live_bars: lag, today's rows and files, {SERVICE}'s "
    "health.",
)
def live_observer(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    return dg.SensorResult(asset_events=observe(warehouse.path, datetime.now(UTC)))


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
