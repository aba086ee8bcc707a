"""Dagster's alert sensors on a real instance, sending to a local HTTP receiver: a failed run
(a real job executed in process) fires once and the job's next success resolves it; a nightly
snapshot missing past its deadline fires until its partition lands; a pacing log spent for too
long fires until the budget is free again."""

import json
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from assets.alerts.sensors import (
    PACING_EXHAUSTED_AFTER,
    SNAPSHOT_WITNESS,
    build_snapshot_missing_sensor,
    pacing_exhausted,
    run_failed,
    run_succeeded,
    snapshot_due,
)
from assets.resources import IBResource, WarehouseResource
from ibkr.pacer import PacingBudget, RequestKey
from ibkr.pacing_log import SharedPacer, pacing_dir
from warehouse.alerts import read_alerts


@pytest.fixture(autouse=True)
def channel(receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBW_ALERT_URLS", receiver.url)


class Fetch(dg.Config):  # Dagster reads this module's annotations: no `from __future__`
    fail: bool


@dg.op
def fetch(config: Fetch) -> None:
    if config.fail:
        raise RuntimeError("the gateway hung up")


@dg.job
def nightly() -> None:
    fetch()


def run_nightly(instance: dg.DagsterInstance, fail: bool) -> dg.ExecuteInProcessResult:
    return nightly.execute_in_process(
        instance=instance,
        run_config={"ops": {"fetch": {"config": {"fail": fail}}}},
        raise_on_error=False,
    )


def status_context(
    instance: dg.DagsterInstance, home: Path, name: str, result: dg.ExecuteInProcessResult
) -> dg.RunStatusSensorContext:
    """The context the daemon gives a run status sensor for the end of `result`'s run."""
    event = result.get_run_success_event() if result.success else result.get_run_failure_event()
    return dg.build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"warehouse": WarehouseResource(home=str(home))},
    )


def test_a_failed_run_alerts_once_until_the_job_succeeds(home: Path, receiver) -> None:
    with dg.instance_for_test() as instance:
        failures = [run_nightly(instance, fail=True) for _ in range(2)]
        for failed in failures:  # the second, while the first is active, sends nothing
            with status_context(instance, home, "alert_run_failed", failed) as context:
                run_failed(context.for_run_failure())
        assert receiver.wait_for(1)[0] == (
            f"ib-warehouse dagster_run_failed fired: nightly: Dagster run "
            f"{failures[0].dagster_run.run_id} of nightly failed: Execution of run for "
            "\"nightly\" failed. Steps failed: ['fetch']."
        )
        for _ in range(2):  # only the first success after a failure resolves
            succeeded = run_nightly(instance, fail=False)
            with status_context(instance, home, "alert_run_succeeded", succeeded) as context:
                run_succeeded(context)
    messages = receiver.wait_for(2)
    assert len(messages) == 2
    assert messages[1].startswith("ib-warehouse dagster_run_failed resolved: nightly")
    assert read_alerts(home)["source"].to_list() == ["dagster", "dagster"]


def test_the_snapshot_is_due_an_hour_after_the_schedule_on_trading_days() -> None:
    # north_america: the schedule after IB's reset, in New York; due within the hour after
    at = datetime(2024, 7, 10, 12, 0, tzinfo=UTC)  # a Wednesday, 08:00 New York
    day, deadline = snapshot_due(at, "north_america")
    assert day == date(2024, 7, 10) and deadline <= at
    day, _ = snapshot_due(datetime(2024, 7, 8, 4, 0, tzinfo=UTC), "north_america")
    assert day == date(2024, 7, 5)  # Monday before the run: Friday's (07-04 is a holiday)


def test_a_missing_snapshot_alerts_until_it_lands(home: Path, receiver) -> None:
    sensor = build_snapshot_missing_sensor("north_america")
    resources = {"warehouse": WarehouseResource(home=str(home))}
    day = snapshot_due(datetime.now(UTC), "north_america")[0].isoformat()
    with dg.instance_for_test() as instance:
        for _ in range(2):
            with dg.build_sensor_context(instance=instance, resources=resources) as context:
                sensor(context)
        assert receiver.wait_for(1)[0].startswith(
            f"ib-warehouse snapshot_missing fired: {day}: The nightly account snapshot of {day} "
            "is missing past its deadline"
        )
        instance.report_runless_asset_event(
            dg.AssetMaterialization(SNAPSHOT_WITNESS, partition=day)
        )
        for _ in range(2):
            with dg.build_sensor_context(instance=instance, resources=resources) as context:
                sensor(context)
    messages = receiver.wait_for(2)
    assert len(messages) == 2
    assert (
        messages[1]
        == f"ib-warehouse snapshot_missing resolved: {day}: The account snapshot of {day} landed."
    )


def test_a_spent_pacing_budget_alerts_after_its_threshold(home: Path, receiver) -> None:
    budget = PacingBudget()
    clock = [time.time()]  # the log's own clock, advanced by its waits: no wall-clock sleep

    def advance(seconds: float) -> None:
        clock[0] += seconds

    with SharedPacer.for_login(
        home, "127.0.0.1", 4002, "DU1", budget=budget, clock=lambda: clock[0], sleep=advance
    ) as pacer:
        for con_id in range(1, budget.window_limit + 1):  # the whole window, reserve included
            key = RequestKey(con_id, "SMART", "TRADES", "5 secs", "", "1800 S")
            with pacer.slot(key, priority=True):
                pass
    assert clock[0] - time.time() < budget.window  # every request is still in the window
    resources = {"ib": IBResource(), "warehouse": WarehouseResource(home=str(home))}
    spent_since = json.dumps({"default": time.time() - PACING_EXHAUSTED_AFTER.total_seconds()})
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            pacing_exhausted(context)  # first seen spent now: not yet
        assert read_alerts(home).is_empty()
        for _ in range(2):
            with dg.build_sensor_context(
                instance=instance, resources=resources, cursor=spent_since
            ) as context:
                pacing_exhausted(context)
        assert "pacing_exhausted fired: default" in receiver.wait_for(1)[0]
        for log in pacing_dir(home).glob("*.sqlite*"):  # the budget free again
            log.unlink()
        for _ in range(2):
            with dg.build_sensor_context(
                instance=instance, resources=resources, cursor=spent_since
            ) as context:
                pacing_exhausted(context)
    messages = receiver.wait_for(2)
    assert len(messages) == 2 and "pacing_exhausted resolved: default" in messages[1]
