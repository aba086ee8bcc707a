"""The alert sensors: a failed run (resolved by the job's next success), the nightly account
snapshot missing an hour after its schedule (the deadline of its freshness policy), and a data
login's pacing budget spent to the last request for longer than PACING_EXHAUSTED_AFTER.

Each goes through an `engines.alerts.Alerter` of the warehouse's home, so an alert is sent once
until it clears, whichever process (the daemon, a run) sees it first, and is recorded in the
`alerts` dataset with source "dagster".
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from assets.account.schedules import FRESH_WITHIN
from assets.resources import IBResource, WarehouseResource
from assets.trading_days import is_trading_day
from engines.alerts import Alerter
from ibfacts.resets import ib_day
from ibkr.pacer import PacingBudget
from ibkr.pacing_log import used_on_gateway
from ibkr.restarts import snapshot_time

RUN_FAILED = "dagster_run_failed"
SNAPSHOT_MISSING = "snapshot_missing"
PACING_EXHAUSTED = "pacing_exhausted"
SNAPSHOT_WITNESS = dg.AssetKey("account_summary")  # IB reports it for every account, every day
PACING_EXHAUSTED_AFTER = timedelta(minutes=15)  # longer than IB's 10-minute window
LOOK_BACK_DAYS = 7  # past a long weekend and a holiday


def alerter(warehouse: WarehouseResource) -> Alerter:
    return Alerter(warehouse.path, source="dagster")


@dg.run_failure_sensor(
    name="alert_run_failed",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts IBW_ALERT_URLS when a run fails (once per job until it next succeeds).",
)
def run_failed(context: dg.RunFailureSensorContext, warehouse: WarehouseResource) -> None:
    job = context.dagster_run.job_name
    reason = context.failure_event.message or "no message"
    with alerter(warehouse) as alerts:
        alerts.fire(
            RUN_FAILED,
            job,
            f"Dagster run {context.dagster_run.run_id} of {job} failed: {reason}",
        )


@dg.run_status_sensor(
    name="alert_run_succeeded",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Resolves a job's failed-run alert when the job next succeeds.",
)
def run_succeeded(context: dg.RunStatusSensorContext, warehouse: WarehouseResource) -> None:
    job = context.dagster_run.job_name
    with alerter(warehouse) as alerts:
        alerts.resolve(RUN_FAILED, job, f"{job} succeeded again ({context.dagster_run.run_id}).")


def snapshot_due(now: datetime, region: str) -> tuple[date, datetime] | None:
    """The New York trading day of the latest nightly snapshot whose deadline (its schedule's
    time plus FRESH_WITHIN) has passed at `now`, and that deadline."""
    at, zone = snapshot_time(region)
    local = now.astimezone(ZoneInfo(zone))
    for back in range(LOOK_BACK_DAYS + 1):
        tick = datetime.combine(local.date() - timedelta(days=back), at, ZoneInfo(zone))
        day = ib_day(tick)
        if tick + FRESH_WITHIN <= now and is_trading_day(day):
            return day, tick + FRESH_WITHIN
    return None


def build_snapshot_missing_sensor(region: str) -> dg.SensorDefinition:
    @dg.sensor(
        name="alert_snapshot_missing",
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Alerts when the nightly account snapshot of a trading day has not landed "
            f"{FRESH_WITHIN.seconds // 60} min after its schedule; resolved when it lands."
        ),
    )
    def alert_snapshot_missing(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource
    ) -> dg.SkipReason:
        landed = context.instance.get_materialized_partitions(SNAPSHOT_WITNESS)
        due = snapshot_due(datetime.now(UTC), region)
        with alerter(warehouse) as alerts:
            for _, day in alerts.active(SNAPSHOT_MISSING):
                if day in landed:
                    alerts.resolve(SNAPSHOT_MISSING, day, f"The account snapshot of {day} landed.")
            if due is None:
                return dg.SkipReason("No nightly snapshot is due yet.")
            day, deadline = due[0].isoformat(), due[1]
            if day in landed:
                return dg.SkipReason(f"The account snapshot of {day} is in.")
            alerts.fire(
                SNAPSHOT_MISSING,
                day,
                f"The nightly account snapshot of {day} is missing past its deadline "
                f"({deadline:%Y-%m-%d %H:%M %Z}): see the account_snapshot_job runs, then "
                "materialize that day's partition.",
            )
        return dg.SkipReason(f"The account snapshot of {day} is missing: alerted.")

    return alert_snapshot_missing


@dg.sensor(
    name="alert_pacing_exhausted",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Alerts when a data login's small-bar pacing budget (IB's 60 requests in 10 minutes, "
        f"less the headroom) stays spent for {PACING_EXHAUSTED_AFTER.seconds // 60} min: even "
        "the live service's reserve is gone. Resolved when requests are free again."
    ),
)
def pacing_exhausted(
    context: dg.SensorEvaluationContext, ib: IBResource, warehouse: WarehouseResource
) -> dg.SkipReason:
    budget = PacingBudget.from_env()
    since: dict[str, float] = json.loads(context.cursor or "{}")  # login -> spent since (epoch)
    now = time.time()
    with alerter(warehouse) as alerts:
        for login in ib.logins():
            if not login.serves_data:
                continue
            used = used_on_gateway(warehouse.path, login.host, login.port, budget)
            if used < budget.window_limit:
                since.pop(login.name, None)
                alerts.resolve(PACING_EXHAUSTED, login.name, f"{login.name} may request again.")
                continue
            spent_for = now - since.setdefault(login.name, now)
            if spent_for >= PACING_EXHAUSTED_AFTER.total_seconds():
                alerts.fire(
                    PACING_EXHAUSTED,
                    login.name,
                    f"IB login {login.name} has used {used} of its {budget.window_limit} "
                    f"small-bar requests per window for {spent_for / 60:.0f} min: no live "
                    "subscription or refill can go out; look for a tool outside ib-warehouse "
                    "on this login, or pause the bars backfill.",
                )
    context.update_cursor(json.dumps(since))
    spent = ", ".join(sorted(since)) or "none"
    return dg.SkipReason(f"Logins with their pacing budget spent: {spent}.")
