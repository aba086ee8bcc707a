"""The bars domain through a real DagsterInstance against the embedded gateway, into real Parquet:
readable contract partitions, ranged runs that report every contract with its own numbers, the
sensor's run requests, reasons and cursor, and retries on a gateway restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dagster as dg
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from assets import bars
from assets.bars.asset import CHECKS, CONTRACTS_PER_RUN, LOGIN_TAG
from assets.bars.backfill_sensor import TAG
from assets.bars.partitions import con_id_of, contract_partition_key, range_tags
from assets.resources import IBResource, UniverseResource
from assets.universe.contracts import contracts
from engines.backfill import connected
from engines.bar_series import targets
from ibkr.connection import ConnectionSettings
from ibkr.pacer import PacingBudget, RequestKey
from ibkr.pacing_log import SharedPacer
from ibkr.universe import BarSpec
from ibsim.server.table import HANDLERS
from tests.kit.sensors import evaluate
from tests.kit.universe import dagster_resources, write_universe
from warehouse import ledger

AAPL, MSFT, SPY, SPX, ESH4 = 265598, 272093, 756733, 416904, 495202403
CLIENT_ID = 370  # of the Dagster runs
HISTORICAL_DATA = 20  # reqHistoricalData's message id


def keys_of(home: Path, *con_ids: int) -> list[str]:
    """The partition keys of `con_ids`, as the sensor names them."""
    master = {t.con_id: t.symbol for t in targets(home, [BarSpec("1 day", 1)])}
    return [contract_partition_key(master[c], c) for c in con_ids]


def series_of(home: Path, universe: Path, con_id: int):
    """The series of `con_id` under the single bar spec of `universe`."""
    [spec] = UniverseResource(path=str(universe)).load().bars
    [target] = [t for t in targets(home, [spec]) if t.con_id == con_id]
    return target


def domain(gw, home: Path, universe: Path, per_run: int = CONTRACTS_PER_RUN) -> dg.Definitions:
    """The bars domain (and `contracts`, which its bootstrap job selects) on gateway `gw`."""
    return dg.Definitions.merge(
        bars.definitions(per_run),
        dg.Definitions(
            assets=[contracts],
            resources=dagster_resources(gw, home, universe, CLIENT_ID),
            executor=dg.in_process_executor,
        ),
    )


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None = None):
    return evaluate(defs, "bars_backfill", instance, cursor)


def run_range(defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[str], **kwargs):
    job = defs.resolve_job_def("bars_job")
    return job.execute_in_process(instance=instance, tags=range_tags(keys), **kwargs)


@pytest.fixture
def daily(tmp_path: Path) -> Path:
    return write_universe(tmp_path, bars=[{"bar_size": "1 day", "history": "30d"}])


# ------------------------------------------------------------------ keys
@given(st.text(min_size=1, max_size=20), st.integers(min_value=1, max_value=2**31))
def test_a_key_names_the_contract_and_gives_its_con_id_back(symbol, con_id):
    key = contract_partition_key(symbol, con_id)
    assert con_id_of(key) == con_id
    dg.DynamicPartitionsDefinition(name="k").build_add_request([key])  # Dagster accepts it
    assert "..." not in key and not any(c.isspace() for c in key)


def test_keys_read_as_symbols():
    assert contract_partition_key("ESZ5", 495202512) == "ESZ5.495202512"
    assert contract_partition_key("EUR.USD", 12087792) == "EUR.USD.12087792"
    assert contract_partition_key("BRK B", 72063691) == "BRK_B.72063691"
    assert con_id_of("EUR.USD.12087792") == 12087792


# ------------------------------------------------------------------ the sensor
def test_partitions_are_readable_and_only_where_a_series_applies(gateway, seeded_home, tmp_path):
    universe = write_universe(
        tmp_path,
        bars=[
            {"bar_size": "1 day", "history": "30d", "symbols": ["AAPL", "SPX", "EUR"]},
            {"bar_size": "1 min", "history": "10d", "sec_types": ["STK", "FUT", "CASH"]},
        ],
    )
    defs = domain(gateway, seeded_home, universe)
    with dg.instance_for_test() as instance:
        # an older key format, and a contract whose series the universe no longer asks for
        instance.add_dynamic_partitions("bar_contracts", ["265598", "VIX.13455763"])
        tick(defs, instance)
        keys = instance.get_dynamic_partitions("bar_contracts")
        assert {"AAPL.265598", "EUR.USD.12087792", f"SPX.{SPX}"} <= set(keys)
        assert "265598" not in keys and "VIX.13455763" not in keys  # no daily series for VIX
        assert all(con_id_of(k) for k in keys)
        result = run_range(defs, instance, [f"SPX.{SPX}"])
    [materialization] = result.asset_materializations_for_node("bars")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["series"] == 1 and metadata["1_day_auto_rth.requests"] == 1
    assert not [k for k in metadata if k.startswith("1_min")]  # no 1-min bars of an index


def test_the_sensor_requests_ranges_at_low_priority_and_never_twice(gateway, seeded_home, tmp_path):
    stocks = ["AAPL", "MSFT", "SPY", "QQQ", "TSLA"]
    universe = write_universe(
        tmp_path, bars=[{"bar_size": "1 day", "history": "30d", "symbols": stocks}]
    )
    defs = domain(gateway, seeded_home, universe, per_run=3)
    with dg.instance_for_test() as instance:
        first = tick(defs, instance)
        order = instance.get_dynamic_partitions("bar_contracts")
        covered = []
        for request in first.run_requests:
            assert request.job_name == "bars_job"
            assert request.tags["dagster/priority"] == "-1" and request.tags[TAG] == "bars"
            tags = request.tags
            start = order.index(tags["dagster/asset_partition_range_start"])
            end = order.index(tags["dagster/asset_partition_range_end"])
            assert end - start < 3
            covered += order[start : end + 1]
        assert len(first.run_requests) == 2  # 3 + 2 contracts
        assert len(covered) == len(set(covered)) == len(order) == 5  # each lacks its bars
        assert len(first.cursor) < 40
        job = defs.resolve_job_def("bars_job")
        for request in first.run_requests:  # the daemon creates them, then queues them
            instance.create_run_for_job(job, tags=request.tags)
        again = tick(defs, instance, first.cursor)
    assert again.run_requests == []
    assert again.skip_reason.skip_message.endswith(
        f"{len(order)} contracts wait for runs already queued"
    )


def test_only_contracts_with_gaps_are_requested(gateway, seeded_home, tmp_path):
    universe = write_universe(
        tmp_path, bars=[{"bar_size": "1 day", "history": "30d", "symbols": ["AAPL", "MSFT", "SPY"]}]
    )
    aapl_daily = series_of(seeded_home, universe, AAPL)
    settings = ConnectionSettings("127.0.0.1", gateway.port, 373, 10)
    with connected(settings, seeded_home, "aapl-first") as backfill:
        backfill.run(aapl_daily)  # AAPL is already whole
    defs = domain(gateway, seeded_home, universe)
    with dg.instance_for_test() as instance:
        [request] = tick(defs, instance).run_requests
    assert range_tags(["MSFT.272093", "SPY.756733"]).items() <= request.tags.items()


def test_on_a_fresh_warehouse_the_sensor_resolves_the_universe_first(gateway, tmp_path, daily):
    defs = domain(gateway, tmp_path / "fresh", daily)
    with dg.instance_for_test() as instance:
        first = tick(defs, instance)
        [request] = first.run_requests
        assert request.job_name == "bars_bootstrap_job"
        instance.create_run_for_job(defs.resolve_job_def(request.job_name), tags=request.tags)
        again = tick(defs, instance)
    assert isinstance(again, dg.SkipReason) and "no security master yet" in again.skip_message
    assert "the contracts run is queued" in again.skip_message


def test_a_tick_with_nothing_to_do_says_all_are_up_to_date(gateway, seeded_home, tmp_path):
    universe = write_universe(
        tmp_path, bars=[{"bar_size": "1 day", "history": "30d", "symbols": ["AAPL", "MSFT"]}]
    )
    defs = domain(gateway, seeded_home, universe)
    with dg.instance_for_test() as instance:
        first = tick(defs, instance)
        assert len(first.run_requests) == 1
        assert run_range(defs, instance, instance.get_dynamic_partitions("bar_contracts")).success
        again = tick(defs, instance, first.cursor)
    assert again.skip_reason.skip_message == "all 2 contracts are up to date"
    assert again.cursor == first.cursor


def test_a_spent_budget_is_the_reason_in_numbers(gateway, seeded_home, tmp_path):
    universe = write_universe(
        tmp_path, bars=[{"bar_size": "5 secs", "history": "2d", "symbols": ["AAPL"]}]
    )
    defs = domain(gateway, seeded_home, universe)
    budget = PacingBudget()
    login = SharedPacer.for_login(seeded_home, "127.0.0.1", gateway.port, "DU1", budget=budget)
    with login as pacer, dg.instance_for_test() as instance:
        for n in range(budget.backfill_limit):  # another backfill took its whole share
            with pacer.slot(RequestKey(n + 1, "SMART", "TRADES", "5 secs", "", "3600 S")):
                pass
        full = tick(defs, instance)
    limit = budget.backfill_limit
    assert full.run_requests == [] and full.skip_reason.skip_message == (
        f"0 of 1 contracts are up to date; pacing budget spent: {limit} of {limit} small-bar "
        "requests in the window (1 contracts wait for it)"
    )


def test_an_expired_future_with_nothing_to_fetch_is_shown_done(gateway, seeded_home, daily):
    esh4 = series_of(seeded_home, daily, ESH4)
    settings = ConnectionSettings("127.0.0.1", gateway.port, 371, 10)
    with connected(settings, seeded_home, "before-dagster") as backfill:
        backfill.run(esh4)  # held by a backfill outside Dagster
    defs = domain(gateway, seeded_home, daily)
    with dg.instance_for_test() as instance:
        first = tick(defs, instance)
        [key] = keys_of(seeded_home, ESH4)
        assert key not in {
            k for r in first.run_requests for k in r.tags.values()
        }  # no run asked of it
        [event] = [e for e in first.asset_events if e.partition == key]
        assert event.metadata["status"].value.startswith("nothing to fetch: expired 2024-03-15")
        assert key in instance.get_materialized_partitions(dg.AssetKey("bars"))
        second = tick(defs, instance, first.cursor)
        assert not [e for e in second.asset_events if e.partition == key]  # reported once
        rerun = run_range(defs, instance, [key])  # a click on it succeeds at once
    [materialization] = rerun.asset_materializations_for_node("bars")
    assert materialization.metadata["status"].value.startswith("nothing to fetch")
    assert materialization.metadata["requests"].value == 0


# ------------------------------------------------------------------ ranged runs
def test_a_ranged_run_reports_each_contract_with_its_own_numbers(gateway, seeded_home, daily):
    defs = domain(gateway, seeded_home, daily)
    aapl, msft, spy = keys_of(seeded_home, AAPL, MSFT, SPY)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("bar_contracts", [aapl, msft, spy])
        settings = ConnectionSettings("127.0.0.1", gateway.port, 372, 10)
        [msft_daily] = [
            t
            for t in targets(seeded_home, [BarSpec("1 day", 20, in_sessions=True)])
            if t.con_id == MSFT
        ]
        with connected(settings, seeded_home, "part-of-msft") as backfill:
            backfill.run(msft_daily)  # MSFT's older sessions are held already
        result = run_range(defs, instance, [aapl, msft, spy])
        assert result.success
        records = instance.fetch_materializations(dg.AssetKey("bars"), limit=10).records
        by_key = {r.partition_key: r.asset_materialization.metadata for r in records}
        stored = {r.partition_key: r.storage_id for r in records}
        assert set(by_key) == {aapl, msft, spy}
        written = {k: m["bars_written"].value for k, m in by_key.items()}
        assert (written[aapl], written[msft], written[spy]) == (
            30,
            10,
            30,
        )  # 30 sessions, of which MSFT held 20
        limit = PacingBudget.from_env().backfill_limit
        assert all(isinstance(m["pacing_budget_used"].value, int) for m in by_key.values())
        assert all(m["pacing_budget_limit"].value == limit for m in by_key.values())
        assert by_key[aapl]["1_day_auto_rth.bars_written"].value == 30
        for check in CHECKS:
            key = dg.AssetCheckKey(dg.AssetKey("bars"), check)
            history = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
            assert {h.partition for h in history} == {aapl, msft, spy}, check
            numbers = [h.event.asset_check_evaluation.metadata for h in history]
            assert all(isinstance(next(iter(n.values())).value, int) for n in numbers)
            assert all(h.status.value == "SUCCEEDED" for h in history)
            # each result is pinned to its partition's materialization, as the UI needs it to
            # call the partition's check current rather than "Not evaluated"
            targets_of = {
                h.partition: h.event.asset_check_evaluation.target_materialization_data.storage_id
                for h in history
            }
            assert targets_of == {k: stored[k] for k in (aapl, msft, spy)}, check
        logs = [e.message for e in instance.all_logs(result.run_id)]
    assert any("AAPL 1 day TRADES: " in m and "(1 of 1)" in m for m in logs)
    assert any(m.startswith("AAPL 1 day TRADES: wrote 30 bars to lake/bars/") for m in logs)


# ------------------------------------------------------------------ retries
def test_a_gateway_restart_mid_run_is_retried_and_the_rest_of_the_range_lands(
    make_gateway, seeded_home, daily, monkeypatch
):
    import assets.failures

    gw = make_gateway()
    historical, asked, restarts = HANDLERS[20], [], []

    def restart_on_the_second(session, msg):
        asked.append(msg)
        if len(asked) == 2:  # the gateway restarts as the second contract is asked for
            restarts.append(asyncio.ensure_future(gw.gateway.restart(0.0)))
            return None
        return historical(session, msg)

    monkeypatch.setitem(HANDLERS, 20, restart_on_the_second)
    monkeypatch.setattr(assets.failures, "GATEWAY_RETRY_WAIT", 0.0)
    defs = domain(gw, seeded_home, daily)
    keys = keys_of(seeded_home, AAPL, MSFT, SPY)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("bar_contracts", keys)
        result = run_range(defs, instance, keys)
        materialized = instance.get_materialized_partitions(dg.AssetKey("bars"))
    assert result.success and materialized == set(keys)
    kinds = [e.event_type_value for e in result.all_events]
    assert kinds.count("STEP_UP_FOR_RETRY") == 1 and "STEP_RESTARTED" in kinds
    status = {}
    for target in targets(seeded_home, UniverseResource(path=str(daily)).load().bars):
        held = ledger.read_series(seeded_home, target.key)
        status[target.con_id] = set(held["status"])
    # the cut request's sessions wait for the ledger's retry; the rest of the range landed
    assert status[AAPL] == status[SPY] == {"complete"} and status[MSFT] == {"failed"}


def test_a_bad_universe_fails_in_one_sentence_without_a_retry(gateway, seeded_home, tmp_path):
    universe = tmp_path / "universe.yml"
    universe.write_text("entries: [{symbol: AAPL}]\nbars: [{bar_size: 2 min, history: 5d}]\n")
    defs = domain(gateway, seeded_home, universe)
    [key] = keys_of(seeded_home, AAPL)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("bar_contracts", [key])
        result = run_range(defs, instance, [key], raise_on_error=False)
    assert not result.success
    kinds = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in kinds
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    sentence = failure.step_failure_data.user_failure_data.description
    assert "'2 min' is not an IB bar size" in sentence


# ------------------------------------------------------------------ several IB logins
def test_each_login_gets_runs_of_its_own_contracts_and_a_down_login_s_wait(
    gateway, make_gateway, seeded_home, tmp_path
):
    """Two data logins (the session's gateway and a second one): each contract's runs go to
    the login it is pinned to, tagged with it, and connect there; when a login's gateway is
    gone its contracts wait, saying why, and are never moved to the other."""
    beta_gateway = make_gateway()
    pins = {"alpha": ["AAPL", "MSFT"], "beta": ["SPY", "QQQ", "TSLA"]}
    ports = {"alpha": gateway.port, "beta": beta_gateway.port}
    logins = [
        {"name": name, "host": "127.0.0.1", "port": port, "role": "data", "symbols": pins[name]}
        for name, port in ports.items()
    ]
    gateways = tmp_path / "gateways.yml"
    gateways.write_text(yaml.safe_dump({"gateways": logins}))
    universe = write_universe(
        tmp_path,
        bars=[{"bar_size": "1 day", "history": "30d", "symbols": [*pins["alpha"], *pins["beta"]]}],
    )
    resources = dagster_resources(gateway, seeded_home, universe, CLIENT_ID)
    resources["ib"] = IBResource(port=gateway.port, client_id=CLIENT_ID, gateways=str(gateways))
    defs = dg.Definitions.merge(
        bars.definitions(),
        dg.Definitions(assets=[contracts], resources=resources, executor=dg.in_process_executor),
    )
    symbol_of = {key: key.split(".")[0] for key in keys_of(seeded_home, AAPL, MSFT)}
    with dg.instance_for_test() as instance:
        first = tick(defs, instance)
        order = instance.get_dynamic_partitions("bar_contracts")
        by_login: dict[str, list[str]] = {}
        for request in first.run_requests:
            tags = request.tags
            start = order.index(tags["dagster/asset_partition_range_start"])
            end = order.index(tags["dagster/asset_partition_range_end"])
            by_login.setdefault(tags[LOGIN_TAG], []).extend(order[start : end + 1])
        assert {
            login: sorted(k.split(".")[0] for k in keys) for login, keys in by_login.items()
        } == {login: sorted(symbols) for login, symbols in pins.items()}
        [alpha_run] = [r for r in first.run_requests if r.tags[LOGIN_TAG] == "alpha"]
        asked = beta_gateway.gateway.requests_received[HISTORICAL_DATA]
        result = defs.resolve_job_def("bars_job").execute_in_process(
            instance=instance, tags=alpha_run.tags
        )
        assert result.success
        assert {m.partition for m in result.asset_materializations_for_node("bars")} == set(
            symbol_of
        )
        assert beta_gateway.gateway.requests_received[HISTORICAL_DATA] == asked  # alpha's only

        beta_gateway.stop()
        again = tick(defs, instance, first.cursor)
    assert again.run_requests == []
    message = again.skip_reason.skip_message
    assert (
        f"3 contracts wait for IB login beta: Nothing is listening at 127.0.0.1:{ports['beta']}"
        in (message)
    )
