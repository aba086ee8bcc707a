"""The `live_observer` sensor: every minute, one observation per live stream (lag, today's rows
and files) with the `ibw live` service's health as its health file tells it."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from assets.live.external import SERVICE, live_bars, live_ticks
from assets.resources import WarehouseResource
from warehouse import live_streams

# Written by the service (live.service.health_path); assets may not import live.
HEALTH_FILE = Path("live") / "health.json"
HEALTH_STALE_AFTER = timedelta(minutes=2)  # the service rewrites it every few seconds
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
