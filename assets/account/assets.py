"""The nightly account snapshot as Dagster assets: one asset per dataset, one partition per New
York day, all taken by one run on one IB connection (IB wants one account-updates subscription
at a time, and a snapshot is only whole if its parts are from the same moment).

The assets can be run as a subset: IB reports fills and completed orders for its current day
only, so the day's `executions`, `commissions` and `completed_orders` are taken before midnight
New York (`day_fills_job`), while the nightly run after IB's reset takes the rest (`schedules`)."""

from datetime import date

import dagster as dg

from assets.failures import one_sentence_failures
from assets.resources import IBResource, SnapshotResource, WarehouseResource
from engines.snapshot import DATASETS, gateway_day, store_snapshot, take_snapshot
from warehouse.catalog import refresh_catalog

daily = dg.DailyPartitionsDefinition(
    start_date="2024-01-01", timezone="America/New_York", end_offset=1
)


@dg.multi_asset(
    specs=[dg.AssetSpec(name, group_name="account", kinds={"ib", "parquet"}) for name in DATASETS],
    partitions_def=daily,
    pool="ib_gateway",
    can_subset=True,
)
def account_snapshot(
    context: dg.AssetExecutionContext,
    ib: IBResource,
    warehouse: WarehouseResource,
    snapshot: SnapshotResource,
):
    """Positions, account summary and values, portfolio, P&L, executions and commissions, open
    and completed orders, FA groups, profiles and aliases, for every (sub-)account."""
    day = date.fromisoformat(context.partition_key)
    selected = [key.to_user_string() for key in context.selected_asset_keys]
    with one_sentence_failures():
        snap, now, accounts, attempts = take_snapshot(
            ib.settings, context.run.run_id, region=snapshot.region, deadline=snapshot.deadline,
            datasets=selected, on_wait=context.log.info,
        )  # fmt: skip
    if gateway_day(now) != day:
        raise dg.Failure(
            f"IB reports positions, orders and fills for its today ({gateway_day(now)}) only, "
            f"so the {day} snapshot cannot be taken now: materialize today's partition."
        )
    stored = store_snapshot(warehouse.path, day, snap, accounts, ib.source, attempts, selected)
    refresh_catalog(warehouse.path)
    for dataset in selected:
        yield dg.MaterializeResult(
            asset_key=dataset,
            metadata={
                "dagster/row_count": stored.rows[dataset],
                "accounts": ", ".join(accounts),
                "attempts": attempts,
                "requests": stored.requests,
                "rows_quarantined": stored.quarantined,
            },
        )
