"""The Dagster code location loaded by workspace.yaml: assets, checks and resources.

Resources read the environment when the code location loads: IB_HOST, IB_PORT, IB_CLIENT_ID
(default: the embedded gateway on 127.0.0.1:4002), IBW_HOME, IBW_UNIVERSE and
IBW_SNAPSHOT_REGION (north_america, europe or asia: when the nightly snapshot runs).
"""

import dagster as dg

from assets.bars import build_bars_asset, build_lake_check
from assets.contracts import contracts
from assets.live import (
    LIVE_SPECS,
    live_compaction,
    live_compaction_daily,
    live_compaction_job,
    live_observer,
)
from assets.option_chains import option_chains
from assets.resources import IBResource, SnapshotResource, UniverseResource, WarehouseResource
from assets.snapshots import account_snapshot, fills_job, snapshot_job
from pipelines.schedules import build_fills_schedule, build_snapshot_schedule
from pipelines.sensors import build_backfill_sensor


def resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "ib": IBResource.from_env(),
        "warehouse": WarehouseResource.from_env(),
        "universe": UniverseResource.from_env(),
        "snapshot": SnapshotResource.from_env(),
    }


# The bar series come from the universe file, read once when the code location loads.
bars = build_bars_asset(UniverseResource.from_env().load().bars)

defs = dg.Definitions(
    assets=[contracts, option_chains, bars, account_snapshot, *LIVE_SPECS, live_compaction],
    asset_checks=[build_lake_check(bars)],
    jobs=[snapshot_job, fills_job, live_compaction_job],
    sensors=[build_backfill_sensor(bars), live_observer],
    schedules=[
        build_snapshot_schedule(SnapshotResource.from_env().region),
        build_fills_schedule(),
        live_compaction_daily,
    ],
    resources=resources(),
    executor=dg.in_process_executor,  # one process, one IB connection per run
)
