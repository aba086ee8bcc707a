"""The `bars` asset: historical bars, one partition per (bar series, contract).

Partitioning. Two dimensions: `series`, the universe's bar specs (`1 min auto rth`, `1 day auto
rth`: a handful), and `contract`, the conIds of the security master (dynamic; the backfill sensor
adds them). 500 contracts × 4 series is 2,000 partitions, far inside Dagster's limit of 100,000
per asset, and it stays there at 20,000 contracts. Sessions are deliberately not partitions:
500 contracts × 20 years is 2.5 million sessions, so the coverage ledger tracks them, and one run
of a partition fills every gap of its series with the fewest requests (a day per partition would
cost a request per day; a year of daily bars is one request for 30 years).

A run writes through the backfill (`engines.backfill`): sessions replaced atomically in their
year's file, validated by pandera, recorded in the ledger after the data. Its checks read back
what the warehouse holds for the series: gaps left, duplicate bars, OHLC sanity. A check of its
own (`bars_in_lake`, runnable without a run) compares the ledger with the lake: sessions called
complete whose bars are gone.
"""

import dagster as dg
import polars as pl

from assets.failures import one_sentence_failures
from assets.resources import IBResource, UniverseResource, WarehouseResource
from engines.backfill import connected
from engines.bar_series import Target, targets
from ibkr.universe import BarSpec
from warehouse import bars as bar_store
from warehouse import integrity, ledger
from warehouse.catalog import refresh_catalog
from warehouse.unreadable import UnreadableFile

SERIES = "series"
CONTRACT = "contract"
contract_partitions = dg.DynamicPartitionsDefinition(name="bar_contracts")
GAPS_CHECK = "bars_no_gaps"
DUPLICATES_CHECK = "bars_no_duplicates"
OHLC_CHECK = "bars_ohlc_sane"
LAKE_CHECK = "bars_in_lake"


def bars_partitions(specs: tuple[BarSpec, ...]) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            SERIES: dg.StaticPartitionsDefinition([s.key for s in specs]),
            CONTRACT: contract_partitions,
        }
    )


def partition_key(target: Target) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({SERIES: target.spec.key, CONTRACT: str(target.con_id)})


def build_bars_asset(specs: tuple[BarSpec, ...]) -> dg.AssetsDefinition:
    """The asset for the universe's bar specs (read when the code location loads)."""
    checks = [
        dg.AssetCheckSpec(GAPS_CHECK, asset="bars", description="no expected session missing"),
        dg.AssetCheckSpec(DUPLICATES_CHECK, asset="bars", description="one bar per timestamp"),
        dg.AssetCheckSpec(OHLC_CHECK, asset="bars", description="low ≤ open, close ≤ high"),
    ]

    @dg.asset(
        name="bars",
        group_name="bars",
        kinds={"ib", "parquet"},
        pool="ib_gateway",
        partitions_def=bars_partitions(specs),
        deps=["contracts"],
        check_specs=checks,
    )
    def bars(
        context: dg.AssetExecutionContext,
        ib: IBResource,
        warehouse: WarehouseResource,
        universe: UniverseResource,
    ):
        """Every missing session of one bar series of one contract, fetched paced and stored."""
        keys = context.partition_key.keys_by_dimension
        home = warehouse.path
        with one_sentence_failures():
            target = _target(home, universe.load().bars, keys[SERIES], int(keys[CONTRACT]))
            with connected(ib.settings, home, context.run.run_id, ib.request_timeout) as backfill:
                report = backfill.run(target)
                used = backfill.pacer.used()
                budget = backfill.pacer.budget.backfill_limit
        if report.complete or report.empty:
            refresh_catalog(home)
        stored = bar_store.read_series(home, target.key)
        duplicates = stored.height - stored.select("ts").n_unique()
        low, high = pl.col("low"), pl.col("high")
        insane = stored.filter(
            (low > high) | (pl.col("open") > high) | (pl.col("open") < low)
            | (pl.col("close") > high) | (pl.col("close") < low)
        ).height  # fmt: skip
        yield dg.MaterializeResult(
            metadata={
                "series": target.name,
                "dagster/row_count": stored.height,
                "bars_written": report.bars,
                "requests": report.requests,
                "sessions_complete": report.complete,
                "sessions_empty": report.empty,
                "sessions_failed": report.failed,
                "bars_quarantined": report.quarantined,
                "gaps_left": report.gaps_left,
                "pacing_budget_used": f"{used} of {budget} small-bar requests per window",
                "skipped": report.skipped or "no",
                "errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in report.errors) or "none"),
            }
        )
        yield dg.AssetCheckResult(
            check_name=GAPS_CHECK,
            passed=report.gaps_left == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{report.gaps_left} expected sessions are still missing.",
        )
        yield dg.AssetCheckResult(
            check_name=DUPLICATES_CHECK,
            passed=duplicates == 0,
            description=f"{duplicates} bars share a timestamp with another.",
        )
        yield dg.AssetCheckResult(
            check_name=OHLC_CHECK,
            passed=insane == 0,
            description=f"{insane} bars have open or close outside [low, high].",
        )

    return bars


def build_lake_check(bars: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    """The check that every session the ledger calls complete has its bars in the lake.

    After a run of `bars` it checks that run's partition; run on its own it checks every
    partition at once (Dagster's partitioned checks are still a preview). It names each damaged
    series and the year files that should hold its sessions."""

    @dg.asset_check(
        asset=bars,
        name=LAKE_CHECK,
        description="every session the ledger calls complete has bars in the lake",
    )
    def bars_in_lake(
        context: dg.AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        universe: UniverseResource,
    ) -> dg.AssetCheckResult:
        home = warehouse.path
        try:
            if context.has_partition_key:
                keys = context.partition_key.keys_by_dimension
                with one_sentence_failures():
                    target = _target(home, universe.load().bars, keys[SERIES], int(keys[CONTRACT]))
                held = ledger.read_series(home, target.key)
                days = integrity.lost_sessions(home, target.key, held)
                lost = {target.key: days} if days else {}
            else:
                lost = integrity.lost_everywhere(home)
        except UnreadableFile as exc:  # a ledger or year file: the check names it
            return dg.AssetCheckResult(passed=False, description=exc.sentence)
        lines = [integrity.describe_lost(home, series, days) for series, days in lost.items()]
        return dg.AssetCheckResult(
            passed=not lost,
            description=(
                "\n".join(f"- {line}" for line in lines) + "\n\nRun `ibw verify`, then backfill."
                if lost
                else "Every session the ledger calls complete has bars in the lake."
            ),
            metadata={"series_damaged": len(lost), "sessions_lost": sum(map(len, lost.values()))},
        )

    return bars_in_lake


def _target(home, specs: tuple[BarSpec, ...], series: str, con_id: int) -> Target:
    spec = next((s for s in specs if s.key == series), None)
    if spec is None:
        raise dg.Failure(f"The universe has no bar series {series!r}: add it under 'bars'.")
    found = [t for t in targets(home, [spec]) if t.con_id == con_id]
    if not found:
        raise dg.Failure(
            f"Contract {con_id} is not in the security master or {series!r} does not apply to "
            "it: materialize contracts, or check the series' sec_types and symbols."
        )
    return found[0]
