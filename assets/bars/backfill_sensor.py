"""The backfill sensor: each tick, the bar series with gaps that the pacing budget can carry
become runs of the `bars` asset.

It asks IB for one thing, the time (IB's clock decides which sessions have closed; a gateway that
is down means no runs this tick); gaps come from the coverage ledger, costs from the planner with
the cached head timestamps, and the budget left from the login's shared pacing log. A partition
is requested again only when no run of it is queued or running and the cursor says it was not
requested in the last few minutes, so a tick never duplicates a run. The gateway pool
(`ib_gateway`) decides how many of the requested runs talk to IB at once; the pacer inside each
run keeps IB's rules whatever runs. On a fresh warehouse (no security master) it requests the
`contracts` run first, so `ibw dev` fills itself without a click.
"""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from assets.bars.asset import contract_partitions, partition_key
from assets.resources import IBResource, UniverseResource, WarehouseResource
from engines.bar_series import Holdings, NoSecurityMaster, estimate, targets
from ibkr.durations import DurationTable
from ibkr.errors import IBWError
from ibkr.pacer import PacingBudget
from ibkr.pacing_log import SharedPacer, login_logs
from ibkr.universe import UniverseError

TAG = "ibw/backfill"
CONTRACTS = dg.AssetKey("contracts")  # requested once when the security master is missing
SENSOR_CLIENT_KEY = "bars-backfill-sensor"
MAX_RUNS_PER_TICK = 20
REQUEST_AGAIN_AFTER = timedelta(minutes=10)  # unless its run is still queued or running
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def budget_left(warehouse: WarehouseResource, ib: IBResource) -> int:
    """Small-bar requests a backfill on the busiest login of this gateway may still send in the
    window (the reserve is the live service's)."""
    budget = PacingBudget.from_env()
    used = 0
    for path in login_logs(warehouse.path, ib.host, ib.port):
        with SharedPacer(path, budget) as pacer:
            used = max(used, pacer.used())
    return max(0, budget.backfill_limit - used)


def build_backfill_sensor(bars: dg.AssetsDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name="bars_backfill",
        asset_selection=[bars.key, CONTRACTS],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests `bars` runs for series with gaps, within the pacing budget.",
    )
    def bars_backfill(
        context: dg.SensorEvaluationContext,
        ib: IBResource,
        warehouse: WarehouseResource,
        universe: UniverseResource,
    ) -> dg.SensorResult | dg.SkipReason:
        home = warehouse.path
        try:
            with ib.client(SENSOR_CLIENT_KEY) as client:
                now = client.run(client.now()).astimezone(UTC)
            specs = universe.load().bars
        except (IBWError, UniverseError) as exc:  # the gateway is down, or a broken universe
            return dg.SkipReason(str(exc))
        recent = {
            key: at
            for key, at in json.loads(context.cursor or "{}").items()
            if now - datetime.fromisoformat(at) < REQUEST_AGAIN_AFTER
        }
        running = context.instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED))
        busy = {run.tags.get("dagster/partition", run.tags.get(TAG)) for run in running}
        try:
            found = targets(home, specs)
        except NoSecurityMaster as exc:  # a fresh warehouse: resolve the universe first
            if CONTRACTS.to_user_string() in busy | set(recent):
                return dg.SkipReason(str(exc))
            recent[CONTRACTS.to_user_string()] = now.isoformat()
            bootstrap = dg.RunRequest(asset_selection=[CONTRACTS], tags={TAG: "contracts"})
            return dg.SensorResult(run_requests=[bootstrap], cursor=json.dumps(recent))
        known = set(context.instance.get_dynamic_partitions(contract_partitions.name))
        new_contracts = sorted({str(t.con_id) for t in found} - known)
        left = budget_left(warehouse, ib)
        table = DurationTable.default()
        held = Holdings.read(home)  # one scan of the ledger and the head timestamps
        runs, weights = [], 0
        for target in found:
            key = partition_key(target)
            if str(key) in busy or str(key) in recent:
                continue
            cost = estimate(target, held, now, table)
            if not cost.missing:
                continue
            if cost.weight and weights + cost.weight > left and (weights or left <= 0):
                continue  # a run too big for the window goes alone, when the window is free
            weights += cost.weight
            runs.append(
                dg.RunRequest(partition_key=key, asset_selection=[bars.key], tags={TAG: "bars"})
            )
            recent[str(key)] = now.isoformat()
            if len(runs) == MAX_RUNS_PER_TICK:
                break
        add = [contract_partitions.build_add_request(new_contracts)] if new_contracts else []
        context.log.info(
            f"{len(runs)} runs requested for {len(found)} series; small-bar budget left {left}, "
            f"planned {weights}; {len(new_contracts)} new contracts."
        )
        return dg.SensorResult(
            run_requests=runs, dynamic_partitions_requests=add, cursor=json.dumps(recent)
        )

    return bars_backfill
