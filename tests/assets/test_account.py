"""The account domain in Dagster: what each of the twelve assets tells a user before anything
runs, the snapshot through Dagster against the embedded gateway with a check per dataset and day
that reports numbers, and the schedules on trading days only."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from assets.account import definitions
from assets.account.assets import CHECK, account_snapshot
from assets.metadata import OWNERS
from assets.resources import IBResource, SnapshotResource, WarehouseResource
from assets.trading_days import TRADING_DAYS_NAME, instance_with_days
from engines.snapshot import DATASETS
from ibsim.accounts.book import Book
from tests.kit.gateway import NOW
from tests.kit.scenarios import FA_MASTER, SINGLE

DAY = NOW.date().isoformat()
NEW_YORK = ZoneInfo("America/New_York")


def test_each_dataset_says_what_it_is_its_columns_view_owner_and_lineage() -> None:
    specs = {key.to_user_string(): spec for key, spec in account_snapshot.specs_by_key.items()}
    assert set(specs) == set(DATASETS)
    descriptions = {spec.description for spec in specs.values()}
    assert len(descriptions) == len(DATASETS)  # one of its own each
    for name, spec in specs.items():
        assert spec.owners == OWNERS
        assert spec.metadata["dagster/table_name"] == f"warehouse.{name}"
        columns = {c.name for c in spec.metadata["dagster/column_schema"].columns}
        assert {"snapshot_date", "request_id", "source"} <= columns, name
    assert "reqPositions" in specs["positions"].description
    assert "empty on a login that is not a financial advisor's" in specs["fa_groups"].description
    deps = {name: {d.asset_key.to_user_string() for d in spec.deps} for name, spec in specs.items()}
    assert deps["pnl"] == {"positions"} and deps["commissions"] == {"executions"}
    assert sum(map(len, deps.values())) == 2  # no lineage that is not true
    checks = {key.asset_key.to_user_string() for key in account_snapshot.check_keys}
    assert checks == set(DATASETS)
    assert {spec.partitions_def.name for spec in account_snapshot.check_specs} == {
        TRADING_DAYS_NAME
    }


@pytest.mark.parametrize("scenario", ["single", "fa"])
def test_the_snapshot_through_dagster_checks_every_dataset_of_the_day_with_numbers(
    make_gateway, tmp_path, scenario
):
    book = Book.from_scenario(SINGLE if scenario == "single" else FA_MASTER)
    gw = make_gateway(book=book)
    accounts = [a.id for a in book.accounts]
    resources = {
        "ib": IBResource(port=gw.port, client_id=540),
        "warehouse": WarehouseResource(home=str(tmp_path)),
        "snapshot": SnapshotResource(region="none"),
    }
    with instance_with_days(DAY) as instance:
        result = dg.materialize(
            [account_snapshot], resources=resources, partition_key=DAY, instance=instance
        )
        key = dg.AssetCheckKey(dg.AssetKey("pnl"), CHECK)
        [record] = instance.event_log_storage.get_asset_check_execution_history(key, limit=5)
    assert result.success
    # the check of that day is kept per partition: a later day would not overwrite it
    assert (record.partition, record.status.value) == (DAY, "SUCCEEDED")
    materialized = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert set(materialized) == set(DATASETS)
    positions = materialized["positions"]
    assert positions["accounts"].value == len(accounts)
    assert positions["account_ids"].value == ", ".join(accounts)
    assert positions["rows_quarantined"].value == 0

    evaluations = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == set(DATASETS)
    for name, evaluation in evaluations.items():
        numbers = {k: v.value for k, v in evaluation.metadata.items()}
        assert evaluation.check_name == CHECK and evaluation.partition == DAY
        assert evaluation.passed, evaluation.description
        assert numbers["rows"] == materialized[name]["dagster/row_count"].value
        assert numbers["rows_quarantined"] == 0
        assert numbers["accounts_of_login"] == len(accounts)
    for name in ("account_summary", "account_values", "pnl"):  # IB reports every account
        assert evaluations[name].metadata["accounts_covered"].value == len(accounts)
    assert "accounts_covered" not in evaluations["commissions"].metadata  # no account column
    fa_rows = evaluations["fa_groups"].metadata["rows"].value
    assert (fa_rows > 0) == (scenario == "fa")


def test_a_past_day_stores_nothing_logs_why_and_turns_nothing_red(gateway, tmp_path):
    """IB reports positions, orders and fills for its today only: a click on an earlier day
    asks IB nothing more than its clock, stores nothing and fails nothing."""
    yesterday = (NOW.date() - timedelta(days=1)).isoformat()
    resources = {
        "ib": IBResource(port=gateway.port, client_id=541),
        "warehouse": WarehouseResource(home=str(tmp_path)),
        "snapshot": SnapshotResource(region="none"),
    }
    with instance_with_days(yesterday) as instance:
        result = dg.materialize(
            [account_snapshot], resources=resources, partition_key=yesterday, instance=instance
        )
        warnings = [e.message for e in instance.all_logs(result.run_id) if e.level == 30]
        failed = instance.fetch_failed_materializations(dg.AssetKey("positions"), limit=5)
    assert result.success and failed.records == []
    assert result.get_asset_materialization_events() == []
    assert result.get_asset_check_evaluations() == []
    assert warnings == [
        f"IB keeps no history of positions, orders and fills, so only the gateway's today "
        f"({DAY}) can be snapshotted, not {yesterday}: nothing was stored; materialize that "
        "partition."
    ]
    assert not (tmp_path / "lake").exists()


# ------------------------------------------------------------------ schedules and freshness
def tick(schedule: dg.ScheduleDefinition, instance, at: datetime):
    from pipelines.definitions import defs

    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=at, repository_def=defs.get_repository_def()
    ) as context:
        return schedule.evaluate_tick(context)


def test_the_schedules_run_on_trading_days_only_and_say_why_not() -> None:
    domain = definitions("none")
    schedules = {s.name: s for s in domain.schedules}
    nightly, fills = schedules["nightly_account_snapshot"], schedules["end_of_day_fills"]
    assert nightly.description == (
        "The account snapshot on XNYS trading days: the embedded gateway has no reset window; "
        "the snapshot runs at 02:00 New York."
    )
    with dg.instance_for_test() as instance:
        christmas = tick(nightly, instance, datetime.combine(date(2026, 12, 25), time(2), NEW_YORK))
        assert christmas.skip_message == "2026-12-25 is not an XNYS trading day."
        sunday = tick(fills, instance, datetime.combine(date(2026, 12, 6), time(23, 50), NEW_YORK))
        assert sunday.skip_message == "2026-12-06 is not an XNYS trading day."
        monday = tick(nightly, instance, datetime.combine(date(2026, 12, 7), time(2), NEW_YORK))
        assert [r.partition_key for r in monday.run_requests] == ["2026-12-07"]
        assert instance.get_dynamic_partitions(TRADING_DAYS_NAME) == ["2026-12-07"]
    assert definitions("north_america").schedules[0].description == (
        "The account snapshot on XNYS trading days at 02:00 America/New_York, after IB's north "
        "america reset window (00:15-01:45)."
    )


@pytest.mark.parametrize(
    ("region", "cron", "zone"),
    [
        ("none", "0 3 * * 1-5", "America/New_York"),
        ("europe", "0 9 * * 1-5", "Europe/Zurich"),
        ("asia", "20 7 * * 2-6", "Asia/Hong_Kong"),  # Hong Kong's morning is New York's evening
    ],
)
def test_a_snapshot_missing_an_hour_after_its_schedule_is_not_fresh(region, cron, zone) -> None:
    [assets] = definitions(region).assets
    policies = {spec.freshness_policy for spec in assets.specs}
    assert len(policies) == 1
    [policy] = policies
    assert (policy.deadline_cron, policy.timezone) == (cron, zone)
    assert policy.lower_bound_delta.total_seconds() == 3600
