"""The `contracts` asset: the universe resolved into the security master, with its history
(the work itself is `engines.security_master`, which `ibw universe` runs without Dagster)."""

import dagster as dg

from assets.failures import one_sentence_failures
from assets.metadata import OWNERS, dataset_metadata
from assets.resources import IBResource, UniverseResource, WarehouseResource
from engines.security_master import DATASET, UniverseReport, build_security_master

VIEW = "security_master_current"
ENTRIES_CHECK = "universe_entries_resolve"
VALID_ROWS_CHECK = "rows_pass_validation"


@dg.asset(
    group_name="universe",
    kinds={"ib", "parquet"},
    pool="ib_gateway",
    owners=OWNERS,
    metadata=dataset_metadata(DATASET, view=VIEW),
    check_specs=[
        dg.AssetCheckSpec(
            ENTRIES_CHECK,
            asset="contracts",
            description="Every entry of the universe file resolves to at least one contract.",
        ),
        dg.AssetCheckSpec(
            VALID_ROWS_CHECK,
            asset="contracts",
            description="Every contract IB described passes the security master's schema.",
        ),
    ],
)
def contracts(
    context: dg.AssetExecutionContext,
    ib: IBResource,
    warehouse: WarehouseResource,
    universe: UniverseResource,
):
    """The security master: every contract of the universe by conId, one row per version (a
    rename is a new version, not a lost contract). Analysts query the versions in force as the
    DuckDB view `security_master_current`, the whole history as `security_master`."""
    with one_sentence_failures():
        plan = universe.load()
        with ib.client(context.run.run_id) as client:
            report = build_security_master(
                client, plan, warehouse.path, context.run.run_id, ib.source
            )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": report.rows,
            "contracts_seen": report.contracts,
            "contracts_new": report.new,
            "contracts_changed": report.changed,
            "by_sec_type": dg.MetadataValue.json(report.by_sec_type),
            "entries": report.entries,
            "entries_failed": len(report.failures),
            "rows_quarantined": report.quarantined,
            "requests": report.requests,
            "gateway_time": report.gateway_time.isoformat() if report.gateway_time else "",
        },
        # Unchanged contracts keep the version, so a refresh leaves `bars` in sync
        data_version=dg.DataVersion(report.content_hash),
    )
    yield _entries_check(report)
    yield dg.AssetCheckResult(
        check_name=VALID_ROWS_CHECK,
        passed=report.quarantined == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{report.quarantined} rows quarantined; see the quarantine view.",
        metadata={"rows_quarantined": report.quarantined},
    )


def _entries_check(report: UniverseReport) -> dg.AssetCheckResult:
    """Numbers always; the table of failed entries only when one failed."""
    failures = report.failures
    metadata: dict[str, object] = {
        "entries": report.entries,
        "entries_failed": len(failures),
    }
    if failures:
        lines = ["| entry | reason |", "| --- | --- |"]
        lines += [f"| {r.entry.name} | {r.error} |" for r in failures]
        metadata["failed"] = dg.MetadataValue.md("\n".join(lines))
    return dg.AssetCheckResult(
        check_name=ENTRIES_CHECK,
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description=" ".join(str(r.error) for r in failures) or "Every entry resolved.",
        metadata=metadata,
    )
