"""Option chains through Dagster, against the embedded gateway, into a temp $IBW_HOME: what
lands, what is refused and why, and what an analyst's connection sees. (The security master's
own tests are in test_contracts.py.)"""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from assets.universe.contracts import contracts
from assets.universe.option_chains import option_chains
from tests.kit.gateway import NOW
from tests.kit.universe import dagster_resources, write_universe

TODAY = NOW.date().isoformat()  # the gateway's day
CLIENT_ID = 300


def query(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def check(result: dg.ExecuteInProcessResult, name: str):
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "ibw"


@pytest.fixture
def universe(tmp_path: Path) -> Path:
    return write_universe(tmp_path)


@pytest.mark.slow
def test_option_chains_stay_inside_the_window(gateway, home, universe):
    res = dagster_resources(gateway, home, universe, CLIENT_ID)
    assert dg.materialize([contracts], resources=res).success
    result = dg.materialize([option_chains], resources=res, partition_key=TODAY)
    assert result.success and check(result, "chain_inside_window").passed
    metadata = result.asset_materializations_for_node("option_chains")[0].metadata
    assert metadata["contracts_qualified"].value == metadata["contracts_in_window"].value > 0
    windows = {w["underlying"]: w for w in yaml.safe_load(universe.read_text())["options"]}
    rows = query(
        home,
        "SELECT underlying_symbol, days_to_expiry, moneyness, snapshot_date FROM option_chains",
    )
    assert {r[0] for r in rows} == {"SPY", "AAPL"}
    for symbol, dte, moneyness, snapshot in rows:
        low, high = windows[symbol]["moneyness"]
        assert 0 <= dte <= windows[symbol]["max_days_to_expiry"] and low <= moneyness <= high
        assert str(snapshot) == TODAY
    again = dg.materialize([option_chains], resources=res, partition_key=TODAY)
    assert again.success
    assert query(home, "SELECT count(*) FROM option_chains") == [(len(rows),)]


def test_a_past_chain_cannot_be_snapshotted(gateway, home, universe):
    res = dagster_resources(gateway, home, universe, CLIENT_ID)
    assert dg.materialize([contracts], resources=res).success
    with pytest.raises(dg.Failure) as failure:
        dg.materialize([option_chains], resources=res, partition_key="2024-07-09")
    assert "only the gateway's today (2024-07-10) can be snapshotted" in str(failure.value)


READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
for line in sys.stdin:
    print(con.sql(line).fetchall()[0][0], flush=True)
"""


@pytest.mark.slow
def test_an_analysts_read_only_connection_survives_a_rematerialization(gateway, home, universe):
    res = dagster_resources(gateway, home, universe, CLIENT_ID)
    assert dg.materialize([contracts], resources=res).success
    with subprocess.Popen(
        [sys.executable, "-c", READER, str(home / "warehouse.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as reader:
        try:
            sql = "SELECT count(*) FROM security_master_current"
            before = ask(reader, sql)
            assert dg.materialize([contracts], resources=res).success
            assert dg.materialize([option_chains], resources=res, partition_key=TODAY).success
            assert ask(reader, sql) == before > 0
        finally:
            reader.stdin.close()
            reader.wait(timeout=30)  # it ends when its input does; never killed by name
    assert query(home, "SELECT count(*) FROM option_chains")[0][0] > 0


def ask(reader: subprocess.Popen, sql: str, timeout: float = 30.0) -> int:
    """Send one query to the reader process and wait (bounded) for its answer."""
    reader.stdin.write(sql + "\n")
    reader.stdin.flush()
    ready, _, _ = select.select([reader.stdout], [], [], timeout)
    assert ready, f"the reader did not answer {sql!r} within {timeout:.0f} s"
    return int(reader.stdout.readline())
