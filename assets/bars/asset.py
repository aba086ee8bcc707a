"""The `bars` asset: historical bars, one partition per contract, and its checks.

Partitioning. One dimension, the contract (`assets.bars.partitions`: `AAPL.265598`); a run of a
partition fills every bar series of the universe that applies to the contract (`1 day` for SPX,
`1 day` and `1 min` for AAPL), so no partition stands for a series that can never exist. 500
contracts are 500 partitions, far inside Dagster's limit of 100,000 per asset. Sessions are
deliberately not partitions: 500 contracts × 20 years is 2.5 million sessions, so the coverage
ledger tracks them, and one run fills every gap of a series with the fewest requests.

Batching. A run takes a range of up to `CONTRACTS_PER_RUN` contracts (the sensor's runs and, by
the backfill policy, a backfill launched in the UI), since a run's start-up costs more than a
contract's work. The run reports each contract as its own materialization and its own check
results, with numbers, so the UI shows every partition's state and plots.

A run writes through the backfill (`engines.backfill`): sessions replaced atomically in their
year's file, validated by pandera, recorded in the ledger after the data. Its run log says each
request sent, each pacing wait and each file written.
"""

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster_shared.record import replace

from assets.bars.partitions import con_id_of, contract_partitions
from assets.failures import one_sentence_failures
from assets.metadata import OWNERS, dataset_metadata
from assets.resources import IBResource, UniverseResource, WarehouseResource
from engines.backfill import Backfill, SeriesReport, connected
from engines.bar_series import Target, targets
from ibkr.gateways import Login, data_login
from ibkr.planner import Plan, PlannedRequest
from warehouse import bars as bar_store
from warehouse import integrity, ledger
from warehouse.catalog import refresh_catalog

LOGIN_TAG = "ibw/login"  # the data login a sensor's run backfills on
CONTRACTS_PER_RUN = 20  # a run process starts in 5-15 s, a contract's daily series take ~0.3 s
GAPS_CHECK = "bars_no_gaps"
DUPLICATES_CHECK = "bars_no_duplicates"
OHLC_CHECK = "bars_ohlc_sane"
LAKE_CHECK = "bars_in_lake"
CHECKS = {
    GAPS_CHECK: "Sessions of the contract's series that the ledger still lacks and IB can serve "
    "(metric: gaps). A warning: the sensor fetches them as the pacing budget allows.",
    DUPLICATES_CHECK: "Bars sharing a timestamp with another bar of the same series (metric: "
    "duplicates); the writer replaces whole sessions, so any is a defect.",
    OHLC_CHECK: "Bars whose open or close lies outside [low, high] (metric: bad_bars).",
    LAKE_CHECK: "Sessions the coverage ledger calls complete that have no bars in the lake "
    "(metric: sessions_lost); a run refetches them, `ibw verify` repairs the whole lake.",
}
DESCRIPTION = """Historical bars from IB: one partition per contract (`AAPL.265598`: local symbol
and conId), holding every bar series of the universe file's `bars:` section that applies to the
contract (e.g. daily bars for SPX, daily and 1-min bars for AAPL). A run fetches each series'
missing sessions within IB's pacing rules; the `bars_backfill` sensor requests runs in batches.
Query it in DuckDB as the view `bars` (join `security_master_current` on `con_id` for names)."""
WAIT_WORTH_A_LINE = 1.0  # seconds; shorter sleeps are the pacer's polling


def build_bars_asset(contracts_per_run: int = CONTRACTS_PER_RUN) -> dg.AssetsDefinition:
    """The asset, its backfills batched `contracts_per_run` contracts a run (each run reads the
    universe's bar series afresh)."""
    # Partitioned checks are a preview and backfill policies a beta in Dagster 1.13: both are
    # chosen knowingly so `dg dev` starts without their warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _bars_asset(contracts_per_run)


def _bars_asset(contracts_per_run: int) -> dg.AssetsDefinition:
    checks = [
        dg.AssetCheckSpec(name, asset="bars", description=text, partitions_def=contract_partitions)
        for name, text in CHECKS.items()
    ]

    @dg.asset(
        name="bars",
        group_name="bars",
        description=DESCRIPTION,
        kinds={"ib", "parquet"},
        owners=OWNERS,
        metadata=dataset_metadata("bars"),
        pool="ib_gateway",
        partitions_def=contract_partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(contracts_per_run),
        deps=["contracts"],
        check_specs=checks,
        output_required=False,  # each contract is reported as its own materialization
    )
    def bars(
        context: dg.AssetExecutionContext,
        ib: IBResource,
        warehouse: WarehouseResource,
        universe: UniverseResource,
    ):
        home, stored = warehouse.path, False
        with one_sentence_failures():
            series = by_contract(targets(home, universe.load().bars))
            by_login = keys_by_login(context, ib.logins(), series)
            try:
                for login, keys in by_login.items():
                    settings = login.settings(ib.connect_timeout)
                    session = connected(settings, home, context.run.run_id, ib.request_timeout)
                    with session as backfill:
                        _log_progress(context.log, backfill)
                        for key in keys:
                            found = series.get(con_id_of(key), [])
                            reports = [backfill.run(target) for target in found]
                            stored |= any(r.complete or r.empty for r in reports)
                            for event in partition_events(
                                context.asset_key, key, reports, backfill
                            ):
                                if isinstance(event, dg.AssetCheckEvaluation):
                                    event = aimed_at_latest(context.instance, event)
                                yield event
            finally:  # once a run: the views read the lake's files, new ones included
                if stored:
                    refresh_catalog(home)
        for spec in context.assets_def.check_specs:  # every check was reported per partition
            yield dg.Output(None, context.assets_def.get_output_name_for_asset_check_key(spec.key))

    return bars


def login_of(logins: Sequence[Login], key: str, found: list[Target]) -> Login:
    """The data login that backfills the contract of partition `key`."""
    return data_login(logins, str(con_id_of(key)), found[0].symbol if found else "")


def keys_by_login(
    context: dg.AssetExecutionContext, logins: Sequence[Login], series: dict[int, list[Target]]
) -> dict[Login, list[str]]:
    """The run's partitions grouped by their data login. A sensor's run (tagged with its login)
    keeps only that login's: its range may span another login's contracts, which that login's
    own runs fill."""
    tagged = context.run.tags.get(LOGIN_TAG)
    grouped: dict[Login, list[str]] = {}
    for key in context.partition_keys:
        login = login_of(logins, key, series.get(con_id_of(key), []))
        if tagged is None or login.name == tagged:
            grouped.setdefault(login, []).append(key)
    return grouped


def by_contract(found: list[Target]) -> dict[int, list[Target]]:
    """The universe's series grouped by contract, in the universe's order of series."""
    grouped: dict[int, list[Target]] = {}
    for target in found:
        grouped.setdefault(target.con_id, []).append(target)
    return grouped


def series_label(target: Target) -> str:
    """The series' prefix in metadata keys: `1_day_auto_rth.bars_written`."""
    return target.spec.key.replace(" ", "_")


@dataclass(frozen=True)
class Quality:
    """What the warehouse holds for one series, as the checks count it."""

    rows: int
    duplicates: int
    bad_bars: int
    lost: list[date]

    @classmethod
    def of(cls, home: Path, target: Target) -> "Quality":
        stored = bar_store.read_series(home, target.key)
        low, high = pl.col("low"), pl.col("high")
        bad = stored.filter(
            (low > high) | (pl.col("open") > high) | (pl.col("open") < low)
            | (pl.col("close") > high) | (pl.col("close") < low)
        ).height  # fmt: skip
        held = ledger.read_series(home, target.key)
        lost = integrity.lost_sessions(home, target.key, held)
        return cls(stored.height, stored.height - stored.select("ts").n_unique(), bad, lost)


def partition_events(
    asset_key: dg.AssetKey, key: str, reports: list[SeriesReport], backfill: Backfill
) -> list[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    """One contract's materialization, with numbers, and its four check results."""
    home = backfill.home
    quality = [Quality.of(home, r.target) for r in reports]
    total = {
        "requests": sum(r.requests for r in reports),
        "bars_written": sum(r.bars for r in reports),
        "sessions_complete": sum(r.complete for r in reports),
        "sessions_empty": sum(r.empty for r in reports),
        "sessions_failed": sum(r.failed for r in reports),
        "bars_quarantined": sum(r.quarantined for r in reports),
        "gaps_left": sum(r.gaps_left for r in reports),
    }
    metadata: dict[str, object] = {
        "status": status(reports, total),
        "series": len(reports),
        "dagster/row_count": sum(q.rows for q in quality),
        **total,
        "pacing_budget_used": backfill.pacer.used(),
        "pacing_budget_limit": backfill.pacer.budget.backfill_limit,
    }
    for report in reports:
        label = series_label(report.target)
        metadata[f"{label}.bars_written"] = report.bars
        metadata[f"{label}.requests"] = report.requests
        metadata[f"{label}.gaps_left"] = report.gaps_left
    errors = [e for r in reports for e in r.errors]
    if errors:
        metadata["errors"] = dg.MetadataValue.md("\n".join(f"- {e}" for e in errors))
    duplicates = sum(q.duplicates for q in quality)
    bad_bars = sum(q.bad_bars for q in quality)
    lost = {r.target.key: q.lost for r, q in zip(reports, quality, strict=True) if q.lost}
    lost_lines = [integrity.describe_lost(home, series, days) for series, days in lost.items()]

    def check(name: str, passed: bool, description: str, numbers: dict, **kwargs):
        return dg.AssetCheckEvaluation(
            asset_key=asset_key, check_name=name, passed=passed, partition=key,
            description=description, metadata=numbers, **kwargs,
        )  # fmt: skip

    return [
        dg.AssetMaterialization(asset_key, partition=key, metadata=metadata),
        check(
            GAPS_CHECK, total["gaps_left"] == 0,
            f"{total['gaps_left']} expected sessions are still missing.",
            {"gaps": total["gaps_left"]}, severity=dg.AssetCheckSeverity.WARN,
        ),
        check(
            DUPLICATES_CHECK, duplicates == 0,
            f"{duplicates} bars share a timestamp with another.", {"duplicates": duplicates},
        ),
        check(
            OHLC_CHECK, bad_bars == 0,
            f"{bad_bars} bars have open or close outside [low, high].", {"bad_bars": bad_bars},
        ),
        check(
            LAKE_CHECK, not lost,
            "\n".join(f"- {line}" for line in lost_lines) + "\n\nRun `ibw verify`, then backfill."
            if lost else "Every session the ledger calls complete has bars in the lake.",
            {"sessions_lost": sum(map(len, lost.values())), "series_damaged": len(lost)},
        ),
    ]  # fmt: skip


def aimed_at_latest(
    instance: dg.DagsterInstance, evaluation: dg.AssetCheckEvaluation
) -> dg.AssetCheckEvaluation:
    """The evaluation pinned to its partition's materialization, stored just before it. Dagster
    pins a check result to its materialization only in a one-partition step; a ranged run must do
    it itself, or the UI holds every check of the range for out of date ("Not evaluated")."""
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(evaluation.asset_key, asset_partitions=[evaluation.partition]),
        limit=1,
    ).records
    target = AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )
    return replace(evaluation, target_materialization_data=target)


def status(reports: list[SeriesReport], total: dict[str, int]) -> str:
    """One line for the partition's state: what was fetched, or why nothing was."""
    if not reports:
        return "nothing to fetch: no bar series of the universe applies to this contract"
    if skipped := [r.skipped for r in reports if r.skipped]:
        return f"skipped: {skipped[0]}"
    if total["requests"]:
        return (
            f"fetched {total['sessions_complete'] + total['sessions_empty']} sessions in "
            f"{total['requests']} requests; {total['gaps_left']} still missing"
        )
    if total["gaps_left"]:
        return f"{total['gaps_left']} sessions missing; IB refused them (see errors)"
    failed = total["sessions_failed"]
    out_of_reach = f"; {failed} out of IB's reach" if failed else ""
    return f"nothing to fetch: every session IB can serve is held{out_of_reach}"


def _log_progress(log, backfill: Backfill) -> None:
    """The run log: each series' plan, each request sent (n of the plan), each pacing wait,
    each year file written."""
    home, sent, planned = backfill.home, {}, {}

    def on_plan(target: Target, plan: Plan) -> None:
        planned[target], sent[target] = len(plan.requests), 0

    def on_request(target: Target, request: PlannedRequest) -> None:
        sent[target] = sent.get(target, 0) + 1
        end = request.end_date_time or "now"
        log.info(
            f"{target.name}: {request.duration} ending {end} "
            f"({sent[target]} of {planned.get(target, '?')})"
        )

    def sleep(seconds: float) -> None:
        if seconds >= WAIT_WORTH_A_LINE:
            pacer = backfill.pacer
            log.info(
                f"waiting {seconds:.1f} s for IB's pacing rules ({pacer.used()} of "
                f"{pacer.budget.backfill_limit} small-bar requests used in the window)"
            )
        time.sleep(seconds)

    def on_written(target: Target, rows_by_file: dict[Path, int]) -> None:
        for path, rows in rows_by_file.items():
            log.info(f"{target.name}: wrote {rows:,} bars to {path.relative_to(home)}")

    backfill.on_plan, backfill.on_request, backfill.on_written = on_plan, on_request, on_written
    backfill.pacer.sleep = sleep
