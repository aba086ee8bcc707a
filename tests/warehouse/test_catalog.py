"""The DuckDB catalog: views over the lake, and analysts reading while the pipeline writes."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.kit.processes import ROOT
from tests.kit.warehouse import DAY, T1, T2, contracts, option_chain
from warehouse import layout
from warehouse.catalog import CatalogMissing, connect_readonly, refresh_catalog
from warehouse.parquet import TEMP_PREFIX, TEMP_SUFFIX, read_dataset, write_partition
from warehouse.quarantine import write_quarantine
from warehouse.security_master import merge_versions
from warehouse.validation import split_valid

WAIT = 60.0

# An analyst in another process: connect read-only once, then answer one query per stdin line
# with one JSON line (rows, or the error), until it is signalled.
READER = """
import json, sys
import duckdb
mode, path = sys.argv[1], sys.argv[2]
if mode == "plain":
    con = duckdb.connect(path, read_only=True)
else:
    from pathlib import Path
    from warehouse.catalog import connect_readonly
    con = connect_readonly(Path(path).parent)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    try:
        print(json.dumps({"rows": con.sql(line).fetchall()}, default=str), flush=True)
    except duckdb.Error as exc:
        print(json.dumps({"error": str(exc).splitlines()[0]}), flush=True)
"""

# A pipeline that rewrites one partition forever, alternating 3 and 2 rows, until killed.
WRITER = """
import json, sys
from pathlib import Path
from tests.kit.warehouse import DAY, option_chain
from warehouse.parquet import write_partition
for i in range(10**9):
    strikes = (200.0, 210.0) if i % 2 else (200.0, 210.0, 220.0)
    write_partition(Path(sys.argv[1]), "option_chains", option_chain(strikes=strikes), DAY)
    print(json.dumps({"written": i}), flush=True)
"""


class Child:
    """A Python process run from the repo, talking JSON lines; every answer has a deadline."""

    def __init__(self, script: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)

    def next(self) -> dict:
        try:
            return json.loads(self._lines.get(timeout=WAIT))
        except queue.Empty:
            pytest.fail(f"the child process said nothing within {WAIT} s")

    def ask(self, sql: str) -> list:
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()
        answer = self.next()
        assert "rows" in answer, answer
        return answer["rows"]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        os.kill(self.proc.pid, sig)
        self.proc.wait(timeout=WAIT)
        self._pump_thread.join(timeout=WAIT)  # it ends at EOF; closing under it would raise
        self.proc.stdin.close()
        self.proc.stdout.close()


def reader_process(mode: str, catalog: Path) -> Child:
    child = Child(READER, mode, str(catalog))
    assert child.next() == {"ready": True}
    return child


def one(con: duckdb.DuckDBPyConnection, sql: str):
    return con.sql(sql).fetchall()[0][0]


def test_views_per_dataset_plus_current_contracts_and_quarantine(tmp_path):
    history = merge_versions(pl.DataFrame(), contracts({1: "FB", 2: "SPY"}), T1)
    history = merge_versions(history, contracts({1: "META"}), T2)
    write_partition(tmp_path, "security_master", history)
    write_partition(tmp_path, "option_chains", option_chain(), DAY)
    (tmp_path / "lake" / "empty_dataset").mkdir()
    path = refresh_catalog(tmp_path)
    assert path == layout.catalog_path(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake", "warehouse.duckdb"]

    con = connect_readonly(tmp_path)
    names = {r[0] for r in con.sql("SHOW TABLES").fetchall()}
    assert names == {"option_chains", "quarantine", "security_master", "security_master_current"}
    assert one(con, "SELECT count(*) FROM security_master") == 3
    current = con.sql("SELECT con_id, symbol FROM security_master_current ORDER BY con_id")
    assert current.fetchall() == [(1, "META"), (2, "SPY")]
    assert one(con, "SELECT count(*) FROM quarantine") == 0
    described = {name: kind for name, kind, *_ in con.sql("DESCRIBE option_chains").fetchall()}
    assert described["snapshot_date"] == "DATE"
    assert described["fetched_at"] == "TIMESTAMP WITH TIME ZONE"
    assert one(con, "SELECT max(snapshot_date) FROM option_chains") == date(2024, 7, 10)


def test_partition_keys_keep_the_type_they_have_in_the_files(tmp_path):
    write_partition(tmp_path, "bars", pl.DataFrame({"close": [1.0]}), {"day": "2024-07-10"})
    _, rejected = split_valid(option_chain(strikes=(-1.0,)), "option_chains", "20240710")
    write_quarantine(tmp_path, rejected, "option_chains", "20240710")
    refresh_catalog(tmp_path)
    con = connect_readonly(tmp_path)
    assert con.sql("SELECT typeof(day), day FROM bars").fetchall() == [("VARCHAR", "2024-07-10")]
    assert con.sql("SELECT typeof(origin), origin FROM quarantine").fetchall() == [
        ("VARCHAR", "20240710")
    ]


def test_temp_files_in_the_lake_never_reach_the_catalog(tmp_path):
    path = write_partition(tmp_path, "option_chains", option_chain(), DAY)
    option_chain(strikes=(999.0,)).write_parquet(path.parent / f"{TEMP_PREFIX}x{TEMP_SUFFIX}")
    refresh_catalog(tmp_path)
    assert one(connect_readonly(tmp_path), "SELECT count(*) FROM option_chains") == 3


def test_the_catalog_is_read_only_and_a_missing_one_says_what_to_do(tmp_path):
    with pytest.raises(CatalogMissing, match=r"no warehouse at .* yet: run `ibw demo`"):
        connect_readonly(tmp_path)
    refresh_catalog(tmp_path)
    with pytest.raises(duckdb.Error, match="read-only"):
        connect_readonly(tmp_path).execute("CREATE VIEW x AS SELECT 1")


def test_a_new_connection_in_the_same_process_sees_the_refreshed_catalog(tmp_path):
    refresh_catalog(tmp_path)
    before = connect_readonly(tmp_path)
    write_partition(tmp_path, "option_chains", option_chain(), DAY)
    refresh_catalog(tmp_path)
    # DuckDB caches one database per path and process; a plain read-only connect would get the
    # old catalog (no option_chains view) back while `before` is open.
    assert one(connect_readonly(tmp_path), "SELECT count(*) FROM option_chains") == 3
    assert one(before, "SELECT count(*) FROM quarantine") == 0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "connect_readonly"])
def test_a_reader_in_another_process_keeps_working_across_writes_and_refreshes(tmp_path, mode):
    write_partition(tmp_path, "security_master", merge_versions(pl.DataFrame(), contracts(), T1))
    write_partition(tmp_path, "option_chains", option_chain(), DAY)
    catalog = refresh_catalog(tmp_path)
    reader = reader_process(mode, catalog)
    try:
        assert reader.ask("SELECT count(*) FROM option_chains") == [[3]]
        assert reader.ask("SELECT count(*) FROM security_master_current") == [[2]]
        # The reader's lock is why the catalog is never rebuilt in place.
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(catalog))

        next_day = option_chain(date(2024, 7, 11), strikes=(190.0, 200.0))
        write_partition(tmp_path, "option_chains", next_day, {"snapshot_date": "2024-07-11"})
        write_partition(tmp_path, "option_chains", option_chain(strikes=(230.0,)), DAY)
        assert reader.ask(
            "SELECT snapshot_date, count(*) FROM option_chains GROUP BY ALL ORDER BY 1"
        ) == [["2024-07-10", 1], ["2024-07-11", 2]]

        _, rejected = split_valid(option_chain(strikes=(-1.0,)), "option_chains", "run-1")
        write_quarantine(tmp_path, rejected, "option_chains", "run-1")
        renamed = merge_versions(
            pl.read_parquet(tmp_path / "lake/security_master/part.parquet"),
            contracts({265598: "AAPL.NEW"}),
            T2,
        )
        write_partition(tmp_path, "security_master", renamed)
        assert refresh_catalog(tmp_path) == catalog

        assert reader.ask("SELECT count(*) FROM option_chains") == [[3]]
        assert reader.ask("SELECT count(*) FROM security_master") == [[3]]
        assert reader.ask("SELECT symbol FROM security_master_current ORDER BY con_id") == [
            ["AAPL.NEW"],
            ["SPY"],
        ]
        write_partition(
            tmp_path,
            "option_chains",
            option_chain(date(2024, 7, 12)),
            {"snapshot_date": "2024-07-12"},
        )
        assert reader.ask("SELECT count(*) FROM option_chains") == [[6]]
        fresh = connect_readonly(tmp_path)
        assert one(fresh, "SELECT count(*) FROM quarantine") == 1
    finally:
        reader.stop()


@pytest.mark.slow
def test_a_writer_killed_at_any_moment_leaves_the_lake_readable(tmp_path):
    writer = Child(WRITER, str(tmp_path))
    try:
        for _ in range(20):
            assert "written" in writer.next()
    finally:
        writer.stop(signal.SIGKILL)
    folder = tmp_path / "lake/option_chains/snapshot_date=2024-07-10"
    leftovers = [p for p in folder.iterdir() if p.name != "part.parquet"]
    assert len(leftovers) <= 1 and all(p.name.endswith(TEMP_SUFFIX) for p in leftovers)
    assert read_dataset(tmp_path, "option_chains").height in (2, 3)
    refresh_catalog(tmp_path)
    assert one(connect_readonly(tmp_path), "SELECT count(*) FROM option_chains") in (2, 3)
    write_partition(tmp_path, "option_chains", option_chain(), DAY)
    assert read_dataset(tmp_path, "option_chains").height == 3
