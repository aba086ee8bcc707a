"""Option chains through Dagster, against the embedded gateway, into a temp $IBW_HOME: what
lands, what is refused and why, and what an analyst's connection sees. (The security master's
own tests are in test_contracts.py.)"""

from __future__ import annotations

import select
import subprocess
import sys

import dagster as dg
import pytest

from assets.trading_days import instance_with_days
from assets.universe.contracts import contracts
from assets.universe.option_chains import option_chains
from tests.kit.gateway import NOW
from tests.kit.universe import dagster_resources
from tests.kit.warehouse import query

TODAY = NOW.date().isoformat()  # the gateway's day
CLIENT_ID = 300


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
            with instance_with_days(TODAY) as today:  # chains are partitioned by trading day
                assert dg.materialize(
                    [option_chains], resources=res, partition_key=TODAY, instance=today
                ).success
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
