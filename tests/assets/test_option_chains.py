"""Option chains through Dagster, against the embedded gateway, into a temp $IBW_HOME, on a real
DagsterInstance: trading-day partitions from first use, the daily schedule, the window check with
its numbers, and a click on a past day that stores nothing and turns nothing red."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time

import dagster as dg
import pytest
import yaml

from assets.trading_days import (
    NEW_YORK,
    TRADING_DAYS_NAME,
    instance_with_days,
    today_partition,
    trading_day_partitions,
)
from assets.universe.contracts import contracts
from assets.universe.option_chains import chain_inside_window, option_chains
from assets.universe.schedules import daily_option_chains
from tests.kit.gateway import NOW
from tests.kit.universe import dagster_resources
from tests.kit.warehouse import query

TODAY = NOW.date().isoformat()  # the gateway's day, a Wednesday
YESTERDAY = "2024-07-09"
CLIENT_ID = 310
CHAIN_CHECK = dg.AssetCheckKey(option_chains.key, "chain_inside_window")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real instance that has seen the platform run yesterday and today."""
    with instance_with_days(YESTERDAY, TODAY) as instance:
        yield instance


# ------------------------------------------------------------------ partitions and the schedule
def test_partitions_start_empty_and_only_trading_days_are_added() -> None:
    with dg.instance_for_test() as instance:
        assert instance.get_dynamic_partitions(TRADING_DAYS_NAME) == []  # none before first use
        holiday = today_partition(instance, date(2026, 12, 25))
        assert holiday == dg.SkipReason("2026-12-25 is not an XNYS trading day.")
        weekend = today_partition(instance, date(2026, 12, 5))
        assert weekend.skip_message == "2026-12-05 is not an XNYS trading day."

        added = today_partition(instance, date(2026, 12, 7))
        [request] = added.dynamic_partitions_requests
        assert (request.partitions_def_name, request.partition_keys) == (
            TRADING_DAYS_NAME,
            ["2026-12-07"],
        )
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        again = today_partition(instance, date(2026, 12, 7))
        assert again.skip_message == "2026-12-07 is already a partition of trading_days."


def test_the_sensor_adds_today_on_its_first_tick_of_a_trading_day() -> None:
    today = datetime.now(NEW_YORK).date()
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance) as context:
            result = trading_day_partitions(context)
        assert result == today_partition(instance, today)  # today, whatever day the test runs


def chain_tick(instance: dg.DagsterInstance, day: date):
    """The schedule's tick at 10:00 New York on `day`, as the daemon evaluates it."""
    from pipelines.definitions import defs

    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime.combine(day, time(10), NEW_YORK),
        repository_def=defs.get_repository_def(),
    ) as context:
        return daily_option_chains.evaluate_tick(context)


def test_the_chain_schedule_skips_a_holiday_and_requests_a_trading_day() -> None:
    assert (daily_option_chains.cron_schedule, daily_option_chains.execution_timezone) == (
        "0 10 * * *",
        "America/New_York",
    )
    assert daily_option_chains.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.instance_for_test() as instance:
        holiday = chain_tick(instance, date(2026, 12, 25))
        assert holiday.run_requests == [] and holiday.skip_message == (
            "2026-12-25 is not an XNYS trading day."
        )
        monday = chain_tick(instance, date(2026, 12, 7))
        [request] = monday.run_requests
        assert request.partition_key == "2026-12-07"
        assert instance.get_dynamic_partitions(TRADING_DAYS_NAME) == ["2026-12-07"]


# ------------------------------------------------------------------ runs against the gateway
def test_a_past_day_stores_nothing_logs_why_and_turns_nothing_red(
    gateway, home, universe, instance
):
    res = dagster_resources(gateway, home, universe, CLIENT_ID)
    result = dg.materialize(
        [option_chains, chain_inside_window],
        resources=res,
        partition_key=YESTERDAY,
        instance=instance,
    )
    assert result.success
    assert result.get_asset_materialization_events() == []
    assert result.get_asset_check_evaluations() == []  # the check was skipped, not failed
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level == 30]
    assert warnings == [
        "IB keeps no history of option chains, so only the gateway's today (2024-07-10) can be "
        "snapshotted, not 2024-07-09: nothing was stored; materialize that partition."
    ]
    assert instance.fetch_failed_materializations(option_chains.key, limit=10).records == []
    assert not (home / "lake" / "option_chains").exists()


@pytest.mark.slow
def test_todays_chain_stays_inside_the_window_and_a_past_click_leaves_it_green(
    gateway, home, universe, instance
):
    res = dagster_resources(gateway, home, universe, CLIENT_ID)
    assert dg.materialize([contracts], resources=res, instance=instance).success
    chains = [option_chains, chain_inside_window]
    result = dg.materialize(chains, resources=res, partition_key=TODAY, instance=instance)
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.partition == TODAY
    numbers = {k: v.value for k, v in evaluation.metadata.items()}
    assert numbers["contracts_outside"] == numbers["SPY_outside"] == numbers["AAPL_outside"] == 0
    assert numbers["ES_outside"] == 0 and numbers["ES_contracts"] > 0  # ES's front future's
    metadata = result.asset_materializations_for_node("option_chains")[0].metadata
    assert metadata["contracts_qualified"].value == metadata["contracts_in_window"].value > 0
    stored = query(home, "SELECT underlying_symbol, count(*) FROM option_chains GROUP BY 1")
    assert dict(stored) == {
        symbol: numbers[f"{symbol}_contracts"] for symbol in ("SPY", "AAPL", "ES")
    }
    windows = {w["underlying"]: w for w in yaml.safe_load(universe.read_text())["options"]}
    rows = query(
        home,
        "SELECT underlying_symbol, days_to_expiry, moneyness, snapshot_date FROM option_chains",
    )
    for symbol, dte, moneyness, snapshot in rows:
        low, high = windows[symbol]["moneyness"]
        assert 0 <= dte <= windows[symbol]["max_days_to_expiry"] and low <= moneyness <= high
        assert str(snapshot) == TODAY
    again = dg.materialize(chains, resources=res, partition_key=TODAY, instance=instance)
    assert again.success
    assert query(home, "SELECT count(*) FROM option_chains") == [(len(rows),)]

    past = dg.materialize(chains, resources=res, partition_key=YESTERDAY, instance=instance)
    assert past.success
    history = instance.event_log_storage.get_asset_check_execution_history(CHAIN_CHECK, limit=10)
    latest = {}
    for record in reversed(history):  # oldest first: the last one per day wins
        latest[record.partition] = (record.status.value, record.run_id)
    # Today's result stays green; the past day's check never ran (a run that succeeded with
    # the check still planned is what Dagster shows as "skipped"), so nothing is red.
    assert latest[TODAY][0] == "SUCCEEDED"
    assert latest[YESTERDAY] == ("PLANNED", past.run_id)
    materialized = instance.get_materialized_partitions(option_chains.key)
    assert materialized == {TODAY}
