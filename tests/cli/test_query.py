"""`ibw query`: a table on success, one sentence and exit code 1 on any failure."""

from __future__ import annotations

import pytest

from tests.kit.warehouse import DAY, option_chain, run_query
from warehouse.catalog import refresh_catalog
from warehouse.parquet import write_partition


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    write_partition(tmp_path, "option_chains", option_chain(), DAY)
    refresh_catalog(tmp_path)
    return tmp_path


def test_prints_the_rows_as_a_table(home, capsys):
    sql = 'SELECT strike, "right", NULL AS note FROM option_chains ORDER BY strike'
    assert run_query(sql, "--home", str(home)) == 0
    out = capsys.readouterr().out
    assert "strike" in out and "right" in out
    assert "│ 200.0  │ C     │ NULL │" in out
    assert out.rstrip().endswith("3 rows")


def test_caps_the_rows_shown_and_says_how_many_there_are(home, capsys):
    assert run_query("SELECT * FROM range(120) t(n)", "--home", str(home), "--limit", "2") == 0
    out = capsys.readouterr().out
    assert "│ 1 │" in out and "│ 2 │" not in out
    assert "2 of 120 rows shown" in out


def test_home_defaults_to_ibw_home(home, capsys, monkeypatch):
    monkeypatch.setenv("IBW_HOME", str(home))
    assert run_query("SELECT count(*) AS n FROM option_chains") == 0
    assert "1 row" in capsys.readouterr().out


def test_a_missing_catalog_is_one_sentence(tmp_path, capsys):
    assert run_query("SELECT 1", "--home", str(tmp_path / "nowhere")) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"ibw query: no warehouse at {tmp_path / 'nowhere' / 'warehouse.duckdb'} yet: "
        "run `ibw demo` or materialize the assets first\n"
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC 1", 'ibw query: Parser Error: syntax error at or near "SELEC"\n'),
        ("SELECT * FROM nope", "ibw query: Catalog Error: Table with name nope does not exist!"),
    ],
    ids=["syntax", "unknown-table"],
)
def test_bad_sql_is_duckdbs_message_on_one_line(home, capsys, sql, message):
    assert run_query(sql, "--home", str(home)) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err and "LINE 1" not in err
