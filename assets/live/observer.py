"""How Dagster watches the `ibw live` service, which runs outside it: every minute the
`live_observer` sensor observes the live datasets (rows, today's rows, newest time, lag) and
evaluates their checks from the service's health file, so a dead or lagging service turns a check
red on the assets' pages; it also adds each UTC day the service wrote to the compaction's
partitions. The same checks can be run by hand (`live_checks`)."""

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from assets.live.compaction import LIVE_DAYS, LIVE_DAYS_NAME, days_with_files
from assets.live.external import (
    INTRADAY_SPECS,
    LIVE_SPECS,
    SERVICE,
    live_bars,
    live_differences,
    live_fills,
    live_orders,
    live_ticks,
)
from assets.resources import WarehouseResource
from warehouse import live_streams
from warehouse.parquet import read_dataset

# Written by the service (live.service.health_path); assets may not import live.
HEALTH_FILE = Path("live") / "health.json"
HEALTH_STALE_AFTER = timedelta(minutes=2)  # the service rewrites it every few seconds
# Data the service has heard but the lake does not hold yet: a flush is due every second or so.
STORED_BEHIND_LIMIT = timedelta(minutes=1)
SERVICE_CHECK = "live_service_running"
# stream dataset -> its freshness check and the health file's time of the stream's latest data
STREAMS = {
    live_ticks.key: (live_streams.TICKS, "live_ticks_fresh", "last_tick_at"),
    live_bars.key: (live_streams.BARS, "live_bars_fresh", "last_bar_at"),
}
# journaled dataset -> the column that says how recent a row is
JOURNALED = {
    live_orders.key: "updated_at",
    live_fills.key: "time",
    live_differences.key: "last_seen",
}
OPEN_ORDER_STATES = ("new", "sending", "working")
NEVER_RAN = "service not running (no health file yet: start `ibw live`)"


@dataclass(frozen=True)
class Service:
    """The service's state as its health file tells it."""

    state: str  # in words, for people
    running: bool
    health: dict = field(default_factory=dict)
    age_seconds: float | None = None  # since the health file was written

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        """A warning while no service has ever run on this warehouse (nothing is broken, the
        live side is just not in use yet); an error once one ran and died, lags or is cut off."""
        return (
            dg.AssetCheckSeverity.WARN if self.state == NEVER_RAN else dg.AssetCheckSeverity.ERROR
        )


def read_health(home: Path, now: datetime) -> Service:
    """The service's state from `$IBW_HOME/live/health.json`."""
    try:
        health = json.loads((home / HEALTH_FILE).read_text())
    except FileNotFoundError:
        return Service(NEVER_RAN, False)
    except (OSError, ValueError):
        return Service("service state unknown (its health file cannot be read)", False)
    try:
        age = (now - datetime.fromisoformat(health["written_at"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return Service("service state unknown (its health file has no written_at)", False, health)
    if age > HEALTH_STALE_AFTER.total_seconds():
        return Service(f"service not running (last health {age:.0f} s ago)", False, health, age)
    if not health.get("connected"):
        return Service("running, disconnected from the gateway", False, health, age)
    return Service("running, connected", True, health, age)


@dataclass(frozen=True)
class Verdict:
    """One check's outcome, as the sensor reports it and as a run of the check returns it."""

    asset_key: dg.AssetKey
    check_name: str
    passed: bool
    description: str
    metadata: dict[str, object]

    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    def _fields(self) -> dict[str, object]:
        """The fields, named as both Dagster classes name them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def evaluation(self) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(**self._fields())

    def result(self) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(**self._fields())


def look(home: Path, now: datetime) -> tuple[list[dg.AssetObservation], list[Verdict]]:
    """Every live dataset's observation and every live check's verdict, as of `now`."""
    service = read_health(home, now)
    observations, verdicts = [], []
    for spec in LIVE_SPECS:
        verdicts.append(_service_verdict(spec.key, service))
        if spec.key in STREAMS:
            observation, fresh = _stream(home, spec.key, service, now)
            observations.append(observation)
            verdicts.append(fresh)
        elif spec in INTRADAY_SPECS:
            observations.append(_intraday(home, spec.key, service, now))
        else:
            observations.append(_journaled(home, spec.key, service, now))
    return observations, verdicts


def _service_verdict(key: dg.AssetKey, service: Service) -> Verdict:
    metadata: dict[str, dg.RawMetadataValue] = {
        "health_age_seconds": (
            round(service.age_seconds, 1)
            if service.age_seconds is not None
            else dg.MetadataValue.null()
        ),
        "connected": bool(service.health.get("connected")),
    }
    sentence = f"{service.state[0].upper()}{service.state[1:]}."
    return Verdict(key, SERVICE_CHECK, service.running, sentence, metadata, service.severity)


def _stream(
    home: Path, key: dg.AssetKey, service: Service, now: datetime
) -> tuple[dg.AssetObservation, Verdict]:
    dataset, check, heard_field = STREAMS[key]
    today, newest = _newest(home, dataset, now)
    streams = service.health.get("streams", [])
    not_ok = [f"{s.get('symbol')} ({s.get('state')})" for s in streams if s.get("state") != "ok"]
    heard = max(
        (datetime.fromisoformat(s[heard_field]) for s in streams if s.get(heard_field)),
        default=None,
    )
    behind = (heard - newest if newest else now - heard) if heard else timedelta(0)
    lag = round((now - newest).total_seconds(), 3) if newest else dg.MetadataValue.null()
    observation = dg.AssetObservation(
        key,
        metadata={
            **_today(service, today, newest),
            "lag_seconds": lag,
            "streams": len(streams),
            "streams_ok": len(streams) - len(not_ok),
            "stream_health": dg.MetadataValue.json(streams),
        },
    )
    problems = [] if service.running else [service.state]
    if not_ok:
        problems.append(f"streams not ok: {', '.join(not_ok)}")
    if behind > STORED_BEHIND_LIMIT:
        problems.append(f"the lake is {behind.total_seconds():.0f} s behind what the service heard")
    verdict = Verdict(
        key,
        check,
        not problems,
        (
            f"{dataset}: {'; '.join(problems)}."
            if problems
            else f"{dataset}: every stream ok; the lake holds what the service heard."
        ),
        {
            "lag_seconds": lag,
            "stored_behind_seconds": round(behind.total_seconds(), 3),
            "streams_not_ok": len(not_ok),
            "rows_today": today.rows,
        },
        service.severity,
    )
    return observation, verdict


def _newest(
    home: Path, dataset: str, now: datetime
) -> tuple[live_streams.DaySummary, datetime | None]:
    """Today's summary of an appended dataset, and its newest row's time on any day."""
    today = live_streams.summarize_day(home, dataset, now.date())
    newest = today.newest
    if newest is None and (held := live_streams.days(home, dataset)):
        newest = live_streams.summarize_day(home, dataset, held[-1]).newest
    return today, newest


def _today(
    service: Service, today: live_streams.DaySummary, newest: datetime | None
) -> dict[str, object]:
    """What every appended dataset's observation says first: the service, today's rows and
    files, and its newest row."""
    return {
        "service": service.state,
        "rows_today": today.rows,
        "files_today": today.files,
        "newest": newest.isoformat() if newest else "no rows yet",
    }


def _intraday(home: Path, key: dg.AssetKey, service: Service, now: datetime) -> dg.AssetObservation:
    """An intraday account dataset: how much today holds, how recent it is, and the service's
    largest lag from IB's message to the row written."""
    today, newest = _newest(home, key.to_user_string(), now)
    intraday = service.health.get("intraday", {})
    return dg.AssetObservation(
        key,
        metadata={
            **_today(service, today, newest),
            "accounts": int(intraday.get("accounts", 0)),
            "max_lag_seconds": float(intraday.get("max_lag_seconds", 0.0)),
        },
    )


def _journaled(
    home: Path, key: dg.AssetKey, service: Service, now: datetime
) -> dg.AssetObservation:
    dataset = key.to_user_string()
    rows = read_dataset(home, dataset)
    metadata: dict[str, dg.RawMetadataValue] = {
        "service": service.state,
        "rows": rows.height,
        "rows_today": 0,
        "newest": dg.MetadataValue.null(),
    }
    if rows.height:
        newest = rows[JOURNALED[key]].max()
        metadata |= {
            "rows_today": rows.filter(pl.col("day") == now.date()).height,
            "newest": dg.MetadataValue.timestamp(newest),
        }
    if key == live_orders.key:
        metadata["orders_open"] = (
            rows.filter(pl.col("state").is_in(OPEN_ORDER_STATES)).height if rows.height else 0
        )
    elif key == live_fills.key:
        metadata["fills_without_commission"] = rows["commission"].null_count() if rows.height else 0
    else:
        metadata["differences_open"] = rows.height
    return dg.AssetObservation(key, metadata=metadata)


CHECK_SPECS = [
    dg.AssetCheckSpec(
        SERVICE_CHECK,
        asset=spec.key,
        description=f"{SERVICE} has written its health file within "
        f"{HEALTH_STALE_AFTER.total_seconds():.0f} s and is connected to the gateway.",
    )
    for spec in LIVE_SPECS
] + [
    dg.AssetCheckSpec(
        check,
        asset=key,
        description=f"The service is running, every stream it reports is ok, and the lake is at "
        f"most {STORED_BEHIND_LIMIT.total_seconds():.0f} s behind the latest {dataset} it heard; "
        "lag_seconds is the age of the newest stored row.",
    )
    for key, (dataset, check, _) in STREAMS.items()
]


@dg.multi_asset_check(
    specs=CHECK_SPECS,
    name="live_checks",
    description=f"The live datasets' checks, evaluated now ({SERVICE}'s health file and the lake).",
)
def live_checks(warehouse: WarehouseResource):
    _, verdicts = look(warehouse.path, datetime.now(UTC))
    for verdict in verdicts:
        yield verdict.result()


def live_day_requests(
    instance: dg.DagsterInstance, home: Path
) -> list[dg.AddDynamicPartitionsRequest]:
    """The UTC days with live files that are not yet partitions of `live_compaction`."""
    known = set(instance.get_dynamic_partitions(LIVE_DAYS_NAME))
    new = [day.isoformat() for day in days_with_files(home) if day.isoformat() not in known]
    return [LIVE_DAYS.build_add_request(new)] if new else []


@dg.sensor(
    name="live_observer",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.assets(*(spec.key for spec in LIVE_SPECS)),
    description=f"Observes the live datasets (rows, today's rows, newest time, lag) and "
    f"evaluates their checks from {SERVICE}'s health file; adds each day the service wrote to "
    "live_compaction's partitions.",
)
def live_observer(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    observations, verdicts = look(warehouse.path, datetime.now(UTC))
    return dg.SensorResult(
        asset_events=[*observations, *(v.evaluation() for v in verdicts)],
        dynamic_partitions_requests=live_day_requests(context.instance, warehouse.path),
    )
