"""The catalog is read-only for real: `ibw query` runs only statements that read, and every
connection `connect_readonly` hands out reads no file outside the lake and keeps its settings.

Each hostile statement comes from a probe of the project (issue 12): it must be refused in one
sentence, write no file anywhere and leave every view as it was.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.kit.warehouse import DAY, T1, contracts, option_chain, run_query
from warehouse import layout
from warehouse.catalog import NotARead, check_read_only, connect_readonly, refresh_catalog
from warehouse.parquet import write_partition
from warehouse.security_master import merge_versions

REFUSED = (
    "is refused: the warehouse catalog is read-only, "
    "so only SELECT, DESCRIBE, SHOW and EXPLAIN of a SELECT run on it\n"
)
CURRENT = "SELECT con_id, symbol FROM security_master_current ORDER BY con_id"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home with contracts and a chain under tmp_path/home; tmp_path itself is "outside"."""
    monkeypatch.setenv("COLUMNS", "200")
    home = tmp_path / "home"
    write_partition(home, "security_master", merge_versions(pl.DataFrame(), contracts(), T1))
    write_partition(home, "option_chains", option_chain(), DAY)
    refresh_catalog(home)
    option_chain().write_parquet(tmp_path / "outside.parquet")
    return home


def files(root: Path) -> dict[str, str]:
    """Every file under root with a digest of its bytes: any write anywhere changes this."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def views(home: Path) -> list:
    with connect_readonly(home) as con:
        return [con.sql("SHOW TABLES").fetchall(), con.sql(CURRENT).fetchall()]


def hostile(sql: str, home: Path) -> str:
    outside = home.parent
    return sql.format(
        lake=layout.lake_dir(home), catalog=layout.catalog_path(home), outside=outside
    )


WRITES = {
    "copy-outside": ("COPY", "COPY (SELECT * FROM security_master) TO '{outside}/dump.csv'"),
    "copy-into-lake": (
        "COPY",
        "COPY (SELECT * REPLACE ('HACKED' AS symbol) FROM security_master) "
        "TO '{lake}/security_master/injected.parquet'",
    ),
    "attach-create": (
        "ATTACH",
        "ATTACH '{outside}/planted.duckdb' AS planted; CREATE TABLE planted.t AS SELECT 1",
    ),
    "attach-in-lake": (
        "ATTACH",
        "ATTACH '{lake}/planted.duckdb' AS planted; CREATE TABLE planted.t AS SELECT 1",
    ),
    "detach-reattach-drop": (
        "USE",
        "USE memory; DETACH warehouse; ATTACH '{catalog}' AS w2; "
        "DROP VIEW w2.security_master_current",
    ),
    "export": ("EXPORT", "EXPORT DATABASE '{outside}/exported'"),
    "set": ("SET", "SET enable_external_access = true"),
    "reset": ("RESET", "RESET lock_configuration"),
    "install": ("INSTALL", "INSTALL httpfs"),
    "load": ("LOAD", "LOAD httpfs"),
    "explain-analyze-copy": ("EXPLAIN", "EXPLAIN ANALYZE COPY (SELECT 1) TO '{outside}/e.csv'"),
    "select-then-drop": ("DROP", "SELECT 1; DROP VIEW option_chains"),
}


@pytest.mark.parametrize(("word", "sql"), WRITES.values(), ids=WRITES.keys())
def test_ibw_query_refuses_anything_but_a_read(home, capsys, word, sql):
    before, intact = files(home.parent), views(home)
    assert run_query(hostile(sql, home), "--home", str(home)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"ibw query: {word} {REFUSED}"
    assert files(home.parent) == before
    assert views(home) == intact


OUTSIDE_READS = {
    "read-text": "SELECT * FROM read_text('/etc/passwd')",
    "read-csv": "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
    "parquet-outside": "SELECT * FROM read_parquet('{outside}/outside.parquet')",
    "climb-out-of-the-lake": "SELECT * FROM read_parquet('{lake}/../../outside.parquet')",
    "glob": "SELECT * FROM glob('/*')",
}


@pytest.mark.parametrize("sql", OUTSIDE_READS.values(), ids=OUTSIDE_READS.keys())
def test_ibw_query_reads_no_file_outside_the_lake(home, capsys, sql):
    assert run_query(hostile(sql, home), "--home", str(home)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ibw query: Permission Error: Cannot access file")
    assert captured.err.endswith(f": a query reads only the lake, {layout.lake_dir(home)}\n")
    assert captured.err.count("\n") == 1


READS = {
    "join": "SELECT c.symbol, count(*) AS n FROM option_chains o "
    "JOIN security_master_current c ON o.underlying_con_id = c.con_id GROUP BY ALL",
    "from": "FROM option_chains",
    "with": "WITH s AS (SELECT strike FROM option_chains) SELECT max(strike) FROM s",
    "describe": "DESCRIBE option_chains",
    "show-tables": "SHOW TABLES",
    "summarize": "SUMMARIZE option_chains",
    "explain": "EXPLAIN SELECT * FROM option_chains",
    "explain-analyze": "EXPLAIN ANALYZE SELECT count(*) FROM option_chains",
    "lake-by-path": "SELECT count(*) FROM read_parquet('{lake}/option_chains/**/*.parquet')",
    "two-reads": "SELECT 1; SELECT count(*) FROM security_master_current",
}


@pytest.mark.parametrize("sql", READS.values(), ids=READS.keys())
def test_ibw_query_still_runs_every_read(home, capsys, sql):
    assert run_query(hostile(sql, home), "--home", str(home)) == 0
    assert capsys.readouterr().err == ""


def test_the_join_answers(home, capsys):
    assert run_query(READS["join"], "--home", str(home)) == 0
    assert "│ AAPL   │ 3 │" in capsys.readouterr().out


CONNECTION_ESCAPES = {
    "copy-outside": "COPY (SELECT * FROM security_master) TO '{outside}/dump.csv'",
    "attach-outside": "ATTACH '{outside}/planted.duckdb' AS planted",
    "export-outside": "EXPORT DATABASE '{outside}/exported'",
    "read-text": "SELECT * FROM read_text('/etc/passwd')",
    "read-csv": "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
    "parquet-outside": "SELECT * FROM read_parquet('{outside}/outside.parquet')",
    "enable-external-access": "SET enable_external_access = true",
    "widen-the-lake": "SET allowed_directories = ['/']",
    "unlock": "RESET lock_configuration",
    "profile-to-a-file": "SET profiling_output = '{outside}/profile.json'",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "autoload": "SELECT * FROM read_parquet('https://example.com/x.parquet')",
}


@pytest.mark.parametrize("sql", CONNECTION_ESCAPES.values(), ids=CONNECTION_ESCAPES.keys())
def test_a_connect_readonly_connection_cannot_leave_the_lake_or_unlock_itself(home, sql):
    before, intact = files(home.parent), views(home)
    with connect_readonly(home) as con:
        with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
            con.execute(hostile(sql, home))
        assert con.sql("SELECT count(*) FROM option_chains").fetchall() == [(3,)]
    assert files(home.parent) == before
    assert views(home) == intact


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN COPY (SELECT 1) TO 'x.csv'",
        "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
        "EXPLAIN (ANALYZE) INSERT INTO t VALUES (1)",
        "PRAGMA enable_profiling",
        "CALL checkpoint()",
        "CHECKPOINT",
        "BEGIN",
        "SET VARIABLE x = 1",
        "CREATE MACRO m() AS 1",
        "PREPARE p AS SELECT 1",
        "WITH s AS (SELECT 1) INSERT INTO t SELECT * FROM s",
        "SELECT 1; /* a comment */ UPDATE t SET a = 1",
    ],
)
def test_the_statement_check_refuses_every_statement_that_does_not_only_read(sql):
    with pytest.raises(NotARead, match="is refused: the warehouse catalog is read-only"):
        check_read_only(sql)


def test_a_statement_the_parser_cannot_read_is_its_syntax_error():
    with pytest.raises(duckdb.ParserException, match="syntax error"):
        check_read_only("SELEC 1")
