"""The nightly account snapshot as Dagster assets: one asset per dataset, one partition per New
York trading day, all taken by one run on one IB connection (IB wants one account-updates
subscription at a time, and a snapshot is only whole if its parts are from the same moment).

The assets can be run as a subset: IB reports fills and completed orders for its current day
only, so the day's `executions`, `commissions` and `completed_orders` are taken before midnight
New York (`day_fills_job`), while the nightly run after IB's reset takes the rest (`schedules`).
Each dataset has a check per day: no row quarantined, and every account of the login present
where IB reports on every account."""

from datetime import date

import dagster as dg
import polars as pl

from assets.failures import one_sentence_failures
from assets.metadata import OWNERS, dataset_metadata
from assets.resources import IBResource, SnapshotResource, WarehouseResource
from assets.trading_days import TRADING_DAYS, is_gateway_today, per_partition_checks
from engines.snapshot import DATASETS, Stored, owners, snapshot_logins, store_snapshot
from ibfacts.resets import ib_day
from warehouse import layout
from warehouse.catalog import refresh_catalog
from warehouse.schemas import polars_schema

CHECK = "rows_pass_validation"
UNKEPT = "positions, orders and fills"  # what IB reports for its today only
_FA = "An FA master's only: empty on a login that is not a financial advisor's."
DESCRIPTIONS = {
    "positions": "Every position of every (sub-)account: contract, quantity and average cost, as "
    "IB reports them to reqPositions.",
    "account_summary": "The account summary tags (NetLiquidation, TotalCashValue, BuyingPower, "
    "...) of every account, per currency, from reqAccountSummary.",
    "account_values": "Every account value IB streams on reqAccountUpdates (cash balances, "
    "margins, P&L, per currency), one account at a time.",
    "portfolio": "Each position valued at IB's market price: market value, average cost, "
    "unrealized and realized P&L, from reqAccountUpdates' portfolio updates.",
    "pnl": "Daily, unrealized and realized P&L per account (reqPnL; con_id null) and per "
    "position (reqPnLSingle, asked for each position; a contract IB cannot price is left out).",
    "executions": "IB's day of fills (reqExecutions), one row per execId after corrections (a "
    ".02 replaces its .01), with the commission joined; null until IB reports it.",
    "commissions": "The commission reports IB sends after each fill of the day: commission, "
    "currency and realized P&L per execId. A late one is absent until a rerun.",
    "open_orders": "Every open order of the login (reqAllOpenOrders), any client's, with its "
    "status, fills so far and FA allocation.",
    "completed_orders": "The orders IB completed today (reqCompletedOrders): filled, cancelled "
    "or inactive, with their final status.",
    "fa_groups": f"The FA allocation groups and their accounts (requestFA GROUPS). {_FA}",
    "fa_profiles": f"The FA allocation profiles and each account's share (requestFA PROFILES). "
    f"{_FA}",
    "fa_aliases": f"The aliases an FA master gave its accounts (requestFA ALIASES). {_FA}",
}
# Lineage that is true of how IB answers: P&L per position is asked for each position, and
# commission reports follow the fills they belong to.
DEPENDS_ON = {"pnl": ["positions"], "commissions": ["executions"]}
# IB reports these for every account of the login, so an account missing from them is an error.
EVERY_ACCOUNT = ("account_summary", "account_values", "pnl")

with per_partition_checks():
    CHECK_SPECS = [
        dg.AssetCheckSpec(
            CHECK,
            asset=name,
            partitions_def=TRADING_DAYS,
            description="No row of the day was quarantined"
            + (", and every account of the login is present." if name in EVERY_ACCOUNT else "."),
        )
        for name in DATASETS
    ]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            name,
            group_name="account",
            kinds={"ib", "parquet"},
            description=DESCRIPTIONS[name],
            owners=OWNERS,
            metadata=dataset_metadata(name),
            deps=DEPENDS_ON.get(name, []),
        )
        for name in DATASETS
    ],
    check_specs=CHECK_SPECS,
    partitions_def=TRADING_DAYS,
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
    # in DATASETS' order, which Dagster needs: a dataset after the ones it depends on
    selected = [d for d in DATASETS if dg.AssetKey(d) in context.selected_asset_keys]
    with one_sentence_failures():
        logins = ib.logins()
        with ib.client(context.run.run_id, owners(logins)[0]) as client:
            today = ib_day(client.run(client.now()))
        if not is_gateway_today(context, today, UNKEPT):
            return
        taken = snapshot_logins(
            logins, context.run.run_id, region=snapshot.region, deadline=snapshot.deadline,
            datasets=selected, on_wait=context.log.info,
        )  # fmt: skip
    snap, accounts = taken.snap, taken.accounts
    if not is_gateway_today(context, ib_day(taken.now), UNKEPT):  # the day turned meanwhile
        return
    context.log.info(
        f"IB answered {snap.requests} requests for {len(accounts)} account(s) "
        f"({', '.join(accounts)}) in {taken.attempts} attempt(s)."
    )
    stored = store_snapshot(
        warehouse.path, day, snap, accounts, taken.source, taken.attempts, selected
    )
    refresh_catalog(warehouse.path)
    context.log.info(
        f"Wrote {len(selected)} datasets of {day} under {warehouse.path}: "
        + ", ".join(f"{d} {stored.rows[d]}" for d in selected)
        + f" rows; {stored.quarantined} quarantined."
    )
    for dataset in selected:
        yield dg.MaterializeResult(
            asset_key=dataset,
            metadata={
                "dagster/row_count": stored.rows[dataset],
                "rows_quarantined": stored.rejected[dataset],
                "accounts": len(accounts),
                "account_ids": ", ".join(accounts),
                "attempts": taken.attempts,
                "requests": stored.requests,
            },
        )
        if dg.AssetCheckKey(dg.AssetKey(dataset), CHECK) in context.selected_asset_check_keys:
            yield _check(warehouse, dataset, stored)


def _check(warehouse: WarehouseResource, dataset: str, stored: Stored) -> dg.AssetCheckResult:
    """The day's check of one dataset: quarantined rows, and accounts covered where IB reports
    on every account."""
    rejected = stored.rejected[dataset]
    metadata: dict[str, dg.RawMetadataValue] = {
        "rows": stored.rows[dataset],
        "rows_quarantined": rejected,
        "accounts_of_login": len(stored.accounts),
    }
    problems = [f"{rejected} rows quarantined (see the quarantine view)"] if rejected else []
    covered = _accounts_in(warehouse, dataset, stored.day)
    if covered is not None:
        metadata["accounts_covered"] = len(covered)
        missing = sorted(set(stored.accounts) - covered)
        if dataset in EVERY_ACCOUNT and missing:
            problems.append(f"no rows for {', '.join(missing)}")
    return dg.AssetCheckResult(
        asset_key=dataset,
        check_name=CHECK,
        passed=not problems,
        metadata=metadata,
        description=(
            f"{dataset} of {stored.day}: {'; '.join(problems)}."
            if problems
            else f"{dataset} of {stored.day}: {stored.rows[dataset]} rows, none quarantined."
        ),
    )


def _accounts_in(warehouse: WarehouseResource, dataset: str, day: date) -> set[str] | None:
    """The accounts the stored day of `dataset` names (None: the dataset has no account)."""
    if "account" not in polars_schema(dataset):
        return None
    folder = layout.partition_dir(warehouse.path, dataset, {"snapshot_date": day.isoformat()})
    files = layout.data_files(folder)
    if not files:
        return set()
    column = pl.read_parquet(files, columns=["account"], hive_partitioning=False)["account"]
    return set(column.drop_nulls().to_list())
