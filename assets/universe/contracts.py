"""The `contracts` asset: the universe resolved into the security master, with its history."""

from collections import Counter
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl
from ib_async import ContractDetails

from assets.failures import one_sentence_failures
from assets.resources import IBResource, UniverseResource, WarehouseResource
from ibkr.contracts import Resolution, resolve
from warehouse.catalog import refresh_catalog
from warehouse.parquet import read_dataset, write_partition
from warehouse.quarantine import write_quarantine
from warehouse.security_master import merge_versions
from warehouse.validation import split_valid

DATASET = "security_master"
ENTRIES_CHECK = "universe_entries_resolve"
VALID_ROWS_CHECK = "rows_pass_validation"
ORIGIN = "contracts"  # a rerun replaces the quarantine rows of the previous one


def _expiry(value: str) -> date | None:
    return datetime.strptime(value[:8], "%Y%m%d").date() if len(value) >= 8 else None


def master_row(details: ContractDetails, entry: str) -> dict:
    c = details.contract
    return {
        "con_id": c.conId,
        "symbol": c.symbol,
        "local_symbol": c.localSymbol,
        "sec_type": c.secType,
        "exchange": c.exchange,
        "primary_exchange": c.primaryExchange or None,
        "currency": c.currency,
        "multiplier": c.multiplier or None,
        "expiry": _expiry(c.lastTradeDateOrContractMonth),
        "trading_class": c.tradingClass,
        "min_tick": details.minTick,
        "time_zone_id": details.timeZoneId,
        "trading_hours": details.tradingHours,
        "liquid_hours": details.liquidHours,
        "long_name": details.longName,
        "universe_entry": entry,
    }


def observations(
    resolutions: list[Resolution], request_id: str, fetched_at: datetime, source: str
) -> pl.DataFrame:
    """One row per contract seen this run (the first entry that found it names it)."""
    rows: dict[int, dict] = {}
    for resolution in resolutions:
        for details in resolution.details:
            rows.setdefault(details.contract.conId, master_row(details, resolution.entry.name))
    frame = pl.DataFrame(list(rows.values()), infer_schema_length=None)
    seen = pl.lit(fetched_at).dt.cast_time_unit("us")
    return frame.with_columns(
        request_id=pl.lit(request_id),
        fetched_at=seen,
        source=pl.lit(source),
        # provisional version columns, so rows validate as they will be stored; merge_versions
        # sets the real ones
        valid_from=seen,
        valid_to=pl.lit(None, dtype=pl.Datetime("us", "UTC")),
        first_seen=seen,
        last_seen=seen,
    )


@dg.asset(
    group_name="universe",
    kinds={"ib", "parquet"},
    pool="ib_gateway",
    check_specs=[
        dg.AssetCheckSpec(ENTRIES_CHECK, asset="contracts", description="every entry resolves"),
        dg.AssetCheckSpec(VALID_ROWS_CHECK, asset="contracts", description="no row quarantined"),
    ],
)
def contracts(
    context: dg.AssetExecutionContext,
    ib: IBResource,
    warehouse: WarehouseResource,
    universe: UniverseResource,
):
    """The security master: every contract of the universe by conId, one row per version."""
    with one_sentence_failures():
        plan = universe.load()
        home = warehouse.path
        with ib.client(context.run.run_id) as client:

            async def resolve_all() -> tuple[datetime, list[Resolution]]:
                now = await client.now()
                return now, [await resolve(client, entry, now) for entry in plan.entries]

            now, resolutions = client.run(resolve_all())
            requests = client.requests
    seen_at = datetime.now(UTC)
    observed = observations(resolutions, context.run.run_id, seen_at, ib.source)
    valid, rejected = split_valid(observed, DATASET, origin=ORIGIN)
    master = merge_versions(read_dataset(home, DATASET), valid, seen_at)
    write_partition(home, DATASET, master)
    write_quarantine(home, rejected, DATASET, origin=ORIGIN)
    refresh_catalog(home)

    failures = [r for r in resolutions if r.error is not None]
    by_type = Counter(valid["sec_type"].to_list()) if valid.height else Counter()
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": master.height,
            "contracts_seen": valid.height,
            "by_sec_type": dg.MetadataValue.json(dict(sorted(by_type.items()))),
            "entries": len(plan.entries),
            "entries_failed": len(failures),
            "rows_quarantined": rejected.height,
            "requests": requests,
            "gateway_time": now.isoformat(),
        }
    )
    yield dg.AssetCheckResult(
        check_name=ENTRIES_CHECK,
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description=" ".join(str(r.error) for r in failures) or "Every entry resolved.",
        metadata={"failed": dg.MetadataValue.md(_failure_table(failures))},
    )
    yield dg.AssetCheckResult(
        check_name=VALID_ROWS_CHECK,
        passed=rejected.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{rejected.height} rows quarantined; see the quarantine view.",
    )


def _failure_table(failures: list[Resolution]) -> str:
    if not failures:
        return "none"
    lines = ["| entry | reason |", "| --- | --- |"]
    lines += [f"| {r.entry.name} | {r.error} |" for r in failures]
    return "\n".join(lines)
