"""The `contracts` asset through Dagster, against the embedded gateway, into a temp $IBW_HOME:
what lands in the security master, what is refused and why, what the checks and the data
version say. (The resolution itself is `engines.security_master`, also run by `ibw universe`.)"""

from __future__ import annotations

import socket
from dataclasses import replace

import dagster as dg
import pytest

import assets.failures
from assets.resources import IBResource, UniverseResource, WarehouseResource
from assets.universe.contracts import contracts
from ibsim.market.instruments import STOCKS
from tests.kit.gateway import NOW
from tests.kit.universe import check_named, dagster_resources, write_universe
from tests.kit.warehouse import query

TODAY = NOW.date().isoformat()  # the gateway's day
CLIENT_ID = 300
CONTRACTS = dg.AssetKey("contracts")


def test_every_security_type_lands_in_the_security_master(gateway, home, universe):
    result = dg.materialize(
        [contracts], resources=dagster_resources(gateway, home, universe, CLIENT_ID)
    )
    assert result.success and check_named(result, "universe_entries_resolve").passed
    kinds = dict(query(home, "SELECT sec_type, count(*) FROM security_master_current GROUP BY 1"))
    assert set(kinds) == {"STK", "FUT", "CASH", "IND", "CFD", "BOND", "FUND", "CRYPTO"}
    assert kinds["CFD"] == kinds["BOND"] == kinds["FUND"] == kinds["CRYPTO"] == 1
    symbols = {r[0] for r in query(home, "SELECT symbol FROM security_master_current")}
    assert {"AAPL", "MSFT", "SPY", "QQQ", "TSLA", "ES", "CL", "EUR", "USD", "SPX", "VIX"} <= symbols
    assert {"VFIAX", "BTC"} <= symbols
    aapl = query(home, "SELECT sec_type, con_id FROM security_master_current WHERE symbol = 'AAPL'")
    assert dict(aapl)["STK"] == 265598 and set(dict(aapl)) == {"STK", "CFD"}
    expired = query(
        home,
        f"SELECT local_symbol FROM security_master_current WHERE symbol = 'ES' "
        f"AND expiry < DATE '{TODAY}'",
    )
    assert expired  # ES expired within the last year is there (expired_years: 1)
    lineage = query(home, "SELECT DISTINCT source FROM security_master")
    assert lineage == [(f"ib://127.0.0.1:{gateway.port}",)]


def test_bad_entries_fail_the_check_with_one_sentence_and_the_rest_lands(gateway, home, tmp_path):
    universe = write_universe(
        tmp_path, [{"symbol": "NOPE"}, {"symbol": "ES", "sec_type": "FUT", "exchange": "CME"}]
    )
    result = dg.materialize(
        [contracts], resources=dagster_resources(gateway, home, universe, CLIENT_ID)
    )
    assert result.success  # the universe is not sunk by two bad entries
    evaluation = check_named(result, "universe_entries_resolve")
    assert not evaluation.passed
    text = evaluation.description
    assert "symbol NOPE (STK SMART): no security definition was found" in text
    assert "symbol ES (FUT CME): the contract description matches more than one" in text
    assert "candidates: ESU4" in text
    assert "\n" not in text
    stock = (
        "SELECT count(*) FROM security_master_current WHERE symbol = 'AAPL' AND sec_type = 'STK'"
    )
    assert query(home, stock) == [(1,)]


def test_a_rerun_replaces_and_never_duplicates(gateway, home, universe):
    for _ in range(2):
        assert dg.materialize(
            [contracts], resources=dagster_resources(gateway, home, universe, CLIENT_ID)
        ).success
    [(rows, con_ids)] = query(home, "SELECT count(*), count(DISTINCT con_id) FROM security_master")
    assert rows == con_ids  # nothing changed, so one version per contract
    [(current,)] = query(home, "SELECT count(*) FROM security_master_current")
    assert current == con_ids


def test_a_malformed_row_lands_in_quarantine_with_its_reason(make_gateway, home, tmp_path):
    gw = make_gateway()
    broken = replace(STOCKS[0], con_id=999001, symbol="BADT", local_symbol="BADT", tick_units=0)
    gw.call(gw.gateway.catalog.add, broken)  # IB reports a minimum tick of 0
    universe = write_universe(tmp_path, [{"symbol": "BADT"}])
    result = dg.materialize([contracts], resources=dagster_resources(gw, home, universe, CLIENT_ID))
    assert result.success and not check_named(result, "rows_pass_validation").passed
    [(dataset, reason, row)] = query(home, "SELECT dataset, reason, row FROM quarantine")
    assert dataset == "security_master" and "min_tick" in reason and "999001" in row
    assert query(home, "SELECT count(*) FROM security_master WHERE con_id = 999001") == [(0,)]


def test_a_symbol_change_is_a_new_version_not_a_lost_contract(make_gateway, home, tmp_path):
    gw = make_gateway()
    before = replace(STOCKS[0], con_id=999002, symbol="OLDN", local_symbol="OLDN")
    gw.call(gw.gateway.catalog.add, before)
    universe = write_universe(tmp_path, [{"symbol": "OLDN"}, {"symbol": "NEWN"}])
    assert dg.materialize(
        [contracts], resources=dagster_resources(gw, home, universe, CLIENT_ID)
    ).success
    gw.call(gw.gateway.catalog.add, replace(before, symbol="NEWN", local_symbol="NEWN"))
    assert dg.materialize(
        [contracts], resources=dagster_resources(gw, home, universe, CLIENT_ID)
    ).success
    versions = query(
        home,
        "SELECT symbol, valid_to IS NULL, first_seen FROM security_master "
        "WHERE con_id = 999002 ORDER BY valid_from",
    )
    assert [(v[0], v[1]) for v in versions] == [("OLDN", False), ("NEWN", True)]
    assert versions[0][2] == versions[1][2]  # first seen when it was still OLDN


def test_a_gateway_that_is_down_fails_the_run_with_one_sentence(home, universe, monkeypatch):
    monkeypatch.setattr(assets.failures, "GATEWAY_RETRY_WAIT", 0.0)  # retried at once
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = {
        "ib": IBResource(port=port, connect_timeout=2),
        "warehouse": WarehouseResource(home=str(home)),
        "universe": UniverseResource(path=str(universe)),
    }
    with pytest.raises(dg.Failure) as failure:
        dg.materialize([contracts], resources=res)
    assert failure.value.description.startswith(f"Nothing is listening at 127.0.0.1:{port}")
    assert failure.value.description.endswith("(Tried 5 more times, 0 s apart.)")
    assert "\n" not in failure.value.description


def test_a_broken_universe_file_fails_the_run_with_one_sentence(gateway, home, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("entries:\n  - symbl: AAPL\n")
    with pytest.raises(dg.Failure) as failure:
        dg.materialize([contracts], resources=dagster_resources(gateway, home, broken, CLIENT_ID))
    assert failure.value.description == (
        "broken.yml entry 1: give exactly one of symbol, pattern, future, fx, index, cfd, bond, "
        "fund, crypto."
    )


def test_a_passing_entries_check_carries_numbers_and_no_failure_table(gateway, home, universe):
    result = dg.materialize(
        [contracts], resources=dagster_resources(gateway, home, universe, CLIENT_ID)
    )
    evaluation = check_named(result, "universe_entries_resolve")
    assert evaluation.passed and "failed" not in evaluation.metadata
    entries = evaluation.metadata["entries"].value
    assert isinstance(entries, int) and entries > 0
    assert evaluation.metadata["entries_failed"].value == 0
    rows = check_named(result, "rows_pass_validation").metadata["rows_quarantined"]
    assert rows.value == 0


def test_a_failing_entries_check_names_each_entry_in_a_table(gateway, home, tmp_path):
    universe = write_universe(tmp_path, entries=[{"symbol": "AAPL"}, {"symbol": "NOPE"}])
    result = dg.materialize(
        [contracts], resources=dagster_resources(gateway, home, universe, CLIENT_ID)
    )
    evaluation = check_named(result, "universe_entries_resolve")
    assert not evaluation.passed
    assert evaluation.metadata["entries_failed"].value == 1
    assert "| symbol NOPE (STK SMART) |" in evaluation.metadata["failed"].value


def test_the_asset_names_its_duckdb_view_and_owner():
    spec = contracts.specs_by_key[CONTRACTS]
    assert spec.metadata["dagster/table_name"].endswith(".security_master_current")
    assert spec.owners and "security_master_current" in (spec.description or "")
    assert "dagster/column_schema" in spec.metadata


def _data_versions(instance: dg.DagsterInstance) -> list[str]:
    records = instance.fetch_materializations(CONTRACTS, limit=10).records
    return [r.asset_materialization.tags["dagster/data_version"] for r in reversed(records)]


def test_a_refresh_that_changes_nothing_keeps_the_data_version(make_gateway, home, tmp_path):
    """`bars` depends on `contracts`: a new data version on every refresh would mark every bars
    partition Unsynced although no contract changed."""
    gw = make_gateway()
    before = replace(STOCKS[0], con_id=999003, symbol="OLDV", local_symbol="OLDV")
    gw.call(gw.gateway.catalog.add, before)
    universe = write_universe(tmp_path, entries=[{"symbol": "AAPL"}, {"symbol": "OLDV"}])
    resources = dagster_resources(gw, home, universe, CLIENT_ID)
    with dg.instance_for_test() as instance:
        for _ in range(2):
            assert dg.materialize([contracts], resources=resources, instance=instance).success
        first, second = _data_versions(instance)
        assert first == second
        gw.call(gw.gateway.catalog.add, replace(before, long_name="RENAMED INC"))
        assert dg.materialize([contracts], resources=resources, instance=instance).success
        assert _data_versions(instance)[-1] != second  # a contract changed: downstream is stale
