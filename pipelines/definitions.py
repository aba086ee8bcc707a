"""The Dagster code location loaded by workspace.yaml: the domains of `assets`, assembled, and
the resources they share.

Resources read the environment when the code location loads: IB_HOST, IB_PORT, IB_CLIENT_ID
(default: the embedded gateway on 127.0.0.1:4002), IBW_HOME, IBW_UNIVERSE and
IBW_SNAPSHOT_REGION (north_america, europe or asia: when the nightly snapshot runs).
"""

import dagster as dg

from assets import account, alerts, bars, live, trading_days, universe
from assets.resources import IBResource, SnapshotResource, UniverseResource, WarehouseResource


def resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "ib": IBResource.from_env(),
        "warehouse": WarehouseResource.from_env(),
        "universe": UniverseResource.from_env(),
        "snapshot": SnapshotResource.from_env(),
    }


defs = dg.Definitions.merge(
    universe.definitions(),
    bars.definitions(),
    account.definitions(SnapshotResource.from_env().region),
    live.definitions(),
    alerts.definitions(SnapshotResource.from_env().region),
    trading_days.definitions(),
    dg.Definitions(
        resources=resources(),
        executor=dg.in_process_executor,  # one process, one IB connection per run
    ),
)
