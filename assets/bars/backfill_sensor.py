"""The backfill sensor: each tick, the contracts whose bar series have gaps that the pacing budget
can carry become runs of `bars_job`, up to `CONTRACTS_PER_RUN` contracts a run.

Each contract's series go to one data login of the gateways file (`ibkr.gateways.data_login`:
pinned by symbol, else by rendezvous hash; one login without the file). The sensor asks each data
login for one thing, the time (IB's clock decides which sessions have closed; a login that is
down or in its reset window gets no runs this tick, and its contracts wait for it); gaps come
from the coverage ledger, costs from the planner with the cached head timestamps, and each
login's budget left from its own shared pacing log. Runs are tagged with their login. A contract
is requested only when no unfinished run covers it (the instance's runs say so, by their
partition tags) and its last run did not fail in the last few minutes. Its runs go at a lower
priority than a user's click, and the instance runs two at a time per login (their `ibw/login`
tag), so a click never waits behind the backfill. A contract with nothing left to fetch that was
never materialized is reported materialized by the sensor itself, with the reason, so the UI
shows no "Missing" partition that no run could fill. Every tick that requests nothing says why,
in words and numbers. On a fresh warehouse (no security master) it requests the `contracts` run
first, so `ibw dev` fills itself without a click.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from assets.bars.asset import LOGIN_TAG, by_contract, login_of
from assets.bars.partitions import contract_partition_key, contract_partitions, keys_of_run
from assets.bars.partitions import range_tags as partition_range_tags
from assets.resources import IBResource, UniverseResource, WarehouseResource
from engines.bar_series import Holdings, NoSecurityMaster, Target, estimate, targets
from ibkr.durations import DurationTable
from ibkr.errors import IBWError, one_sentence
from ibkr.gateways import GatewaysError, Login
from ibkr.pacer import PacingBudget
from ibkr.pacing_log import used_on_gateway
from ibkr.universe import UniverseError

TAG = "ibw/backfill"
SENSOR_TAGS = {TAG: "bars", "dagster/priority": "-1"}  # a user's click has priority 0
CONTRACTS = dg.AssetKey("contracts")  # requested once when the security master is missing
SENSOR_CLIENT_KEY = "bars-backfill-sensor"
MAX_RUNS_PER_TICK = 20
AFTER_A_FAILED_RUN = timedelta(minutes=10)  # a contract whose run failed waits this long
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def pacing_used(warehouse: WarehouseResource, login: Login) -> tuple[int, int]:
    """Small-bar requests used in the window on the login's gateway (its busiest log), and the
    backfill's limit (the reserve above it is the live service's)."""
    budget = PacingBudget.from_env()
    used = used_on_gateway(warehouse.path, login.host, login.port, budget)
    return used, budget.backfill_limit


def login_clocks(ib: IBResource, logins: Sequence[Login]) -> tuple[datetime | None, dict[str, str]]:
    """The gateways' time (IB's clock decides which sessions have closed), from the first data
    login that answers, and why each data login that takes no runs now does not: down, or in
    its region's daily reset window."""
    now, idle = None, {}
    for login in logins:
        if not login.serves_data:
            continue
        try:
            with ib.client(SENSOR_CLIENT_KEY, login) as client:
                answered = client.run(client.now()).astimezone(UTC)
        except IBWError as exc:
            idle[login.name] = str(exc)
            continue
        now = now or answered
        if login.in_reset(answered):
            idle[login.name] = f"IB login {login.name} is in its {login.region} reset window."
    return now, idle


def held_by_runs(
    instance: dg.DagsterInstance, order: Sequence[str], logins: dict[str, str]
) -> tuple[set[str], set[str]]:
    """The contracts that unfinished runs cover (a user's click included), and those whose
    sensor run failed recently (retried after AFTER_A_FAILED_RUN). A sensor's run covers only
    its login's contracts (`logins`: each key's login name) within its range."""
    unfinished = instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED))
    since = datetime.now(UTC) - AFTER_A_FAILED_RUN
    failed = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE], tags={TAG: "bars"}, updated_after=since
        )
    )

    def keys(run: dg.DagsterRun) -> list[str]:
        tagged = run.tags.get(LOGIN_TAG)
        found = keys_of_run(run.tags, order)
        return [key for key in found if tagged is None or logins.get(key) == tagged]

    covered = {key for run in unfinished for key in keys(run)}
    return covered, {key for run in failed for key in keys(run)} - covered


def contiguous_ranges(order: Sequence[str], due: set[str], size: int) -> Iterator[list[str]]:
    """The `due` keys in runs of at most `size` keys, each contiguous in `order`."""
    current: list[str] = []
    for key in order:
        if key not in due or len(current) == size:
            if current:
                yield current
            current = []
        if key in due:
            current.append(key)
    if current:
        yield current


def nothing_to_fetch(asset_key: dg.AssetKey, key: str, found: list[Target], now: datetime):
    """The materialization of a contract no run has to fill: every series is held."""
    expiry = found[0].expiry
    why = f"every expected session of its {len(found)} series is held"
    if expiry is not None and expiry < now.date():
        why = f"expired {expiry}; every session IB can serve up to its expiry is held"
    return dg.AssetMaterialization(
        asset_key, partition=key, metadata={"status": f"nothing to fetch: {why}",
                                            "series": len(found), "gaps_left": 0},
    )  # fmt: skip


def build_backfill_sensor(
    bars: dg.AssetsDefinition,
    bars_job: dg.UnresolvedAssetJobDefinition,
    bootstrap_job: dg.UnresolvedAssetJobDefinition,
    contracts_per_run: int,
) -> dg.SensorDefinition:
    @dg.sensor(
        name="bars_backfill",
        jobs=[bars_job, bootstrap_job],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Requests `{bars_job.name}` runs of up to {contracts_per_run} contracts for the "
            "bar series with gaps, within IB's pacing budget, at a lower priority than a click."
        ),
    )
    def bars_backfill(
        context: dg.SensorEvaluationContext,
        ib: IBResource,
        warehouse: WarehouseResource,
        universe: UniverseResource,
    ) -> dg.SensorResult | dg.SkipReason:
        home = warehouse.path
        try:
            logins = ib.logins()
            specs = universe.load().bars
            found = targets(home, specs)
        except NoSecurityMaster as exc:  # a fresh warehouse: resolve the universe first
            if context.instance.get_runs(
                filters=dg.RunsFilter(statuses=UNFINISHED, tags={TAG: "contracts"}), limit=1
            ):
                return dg.SkipReason(f"{exc} (the contracts run is queued)")
            bootstrap = dg.RunRequest(job_name=bootstrap_job.name, tags={TAG: "contracts"})
            return dg.SensorResult(run_requests=[bootstrap])
        except (IBWError, UniverseError, GatewaysError) as exc:  # a broken universe or file
            return dg.SkipReason(one_sentence(exc))
        now, idle = login_clocks(ib, logins)
        if now is None:  # no data login answers
            return dg.SkipReason(" ".join(idle.values()))

        series = by_contract(found)
        keys = {
            con_id: contract_partition_key(ts[0].symbol, con_id) for con_id, ts in series.items()
        }
        assigned = {
            keys[con_id]: login_of(logins, keys[con_id], ts) for con_id, ts in series.items()
        }
        names = {key: login.name for key, login in assigned.items()}
        known = context.instance.get_dynamic_partitions(contract_partitions.name)
        queued, failed = held_by_runs(context.instance, known, names)
        current, kept = set(keys.values()), set(known)
        # a contract no series applies to any more (the universe changed) loses its partition
        stale = [key for key in known if key not in current and key not in queued]
        # new contracts side by side with their login's, so each login's runs take few ranges
        new = sorted((key for key in keys.values() if key not in kept), key=names.__getitem__)
        order = [*(key for key in known if key not in stale), *new]
        materialized = context.instance.get_materialized_partitions(bars.key)
        budgets = {
            login.name: pacing_used(warehouse, login)
            for login in logins
            if login.serves_data and login.name not in idle
        }
        table, held = DurationTable.default(), Holdings.read(home)  # one scan of the ledger
        due: dict[str, set[str]] = {name: set() for name in budgets}
        weights = dict.fromkeys(budgets, 0)
        done, idle_waiting = [], dict.fromkeys(idle, 0)
        up_to_date = over_budget = waiting = cooling = 0
        for con_id, found_here in series.items():
            key = keys[con_id]
            if key in queued or key in failed:
                waiting += key in queued
                cooling += key in failed
                continue
            costs = [estimate(target, held, now, table) for target in found_here]
            if not any(cost.missing for cost in costs):
                up_to_date += 1
                if key not in materialized:
                    done.append(nothing_to_fetch(bars.key, key, found_here, now))
                continue
            name = names[key]
            if name in idle:  # its login is down: it waits, never moved to another mid-series
                idle_waiting[name] += 1
                continue
            weight, (used, limit) = sum(cost.weight for cost in costs), budgets[name]
            if (
                weight
                and weights[name] + weight > limit - used
                and (weights[name] or used >= limit)
            ):
                over_budget += 1  # a run too big for the window goes alone, when it is free
                continue
            weights[name] += weight
            due[name].add(key)
            if sum(map(len, due.values())) == MAX_RUNS_PER_TICK * contracts_per_run:
                break  # enough for this tick; the rest is estimated on the next
        ranges = [
            (name, keys_range)
            for name, keys_due in due.items()
            for keys_range in contiguous_ranges(
                [key for key in order if names.get(key) == name], keys_due, contracts_per_run
            )
        ][:MAX_RUNS_PER_TICK]
        runs = [
            dg.RunRequest(
                job_name=bars_job.name,
                tags={**SENSOR_TAGS, LOGIN_TAG: name, **partition_range_tags(keys_range)},
            )
            for name, keys_range in ranges
        ]
        changes = [contract_partitions.build_add_request(new)] if new else []
        if stale:
            changes.append(contract_partitions.build_delete_request(stale))
        if runs:
            spent = ", ".join(
                f"{name} {used} of {limit} used, {weights[name]} planned"
                for name, (used, limit) in budgets.items()
            )
            context.log.info(
                f"{len(runs)} runs requested for {sum(len(r) for _, r in ranges)} of "
                f"{len(series)} contracts; small-bar budget per login: {spent}; "
                f"{len(new)} new contracts; previous round at {context.cursor or 'none'}."
            )
            return dg.SensorResult(
                run_requests=runs, dynamic_partitions_requests=changes, asset_events=done,
                cursor=now.isoformat(timespec="seconds"),
            )  # fmt: skip
        reasons = [f"{up_to_date} of {len(series)} contracts are up to date"]
        if up_to_date == len(series):
            reasons = [f"all {len(series)} contracts are up to date"]
        if over_budget:
            spent = ", ".join(f"{used} of {limit}" for used, limit in budgets.values())
            reasons.append(
                f"pacing budget spent: {spent} small-bar requests in the window "
                f"({over_budget} contracts wait for it)"
            )
        for name, count in idle_waiting.items():
            if count:
                reasons.append(f"{count} contracts wait for IB login {name}: {idle[name]}")
        if waiting:
            reasons.append(f"{waiting} contracts wait for runs already queued")
        if cooling:
            minutes = AFTER_A_FAILED_RUN.seconds // 60
            reasons.append(f"{cooling} contracts wait {minutes} min after a failed run")
        return dg.SensorResult(
            skip_reason="; ".join(reasons), dynamic_partitions_requests=changes, asset_events=done,
            cursor=context.cursor,
        )  # fmt: skip

    return bars_backfill
