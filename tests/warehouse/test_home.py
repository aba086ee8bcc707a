"""A home can be copied or moved and still queries its own lake; its files follow the umask."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import duckdb
import pytest

from tests.kit.warehouse import DAY, option_chain, run_query
from warehouse import layout
from warehouse.catalog import connect_readonly, refresh_catalog
from warehouse.parquet import write_partition

COUNT = "SELECT count(*) FROM option_chains"


def built_home(root: Path) -> Path:
    home = root / "home"
    write_partition(home, "option_chains", option_chain(), DAY)
    refresh_catalog(home)
    return home


def test_a_copied_home_queries_its_own_lake(tmp_path):
    original = built_home(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    write_partition(original, "option_chains", option_chain(strikes=(200.0,)), DAY)
    with connect_readonly(copy) as con:
        assert con.sql(COUNT).fetchall() == [(3,)]
    # The catalog was rebuilt for the copy, so any DuckDB client now reads the copy's lake too.
    with duckdb.connect(str(layout.catalog_path(copy)), read_only=True) as con:
        assert con.sql(COUNT).fetchall() == [(3,)]
    with connect_readonly(original) as con:
        assert con.sql(COUNT).fetchall() == [(1,)]


def test_a_moved_home_answers_without_a_write_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    moved = tmp_path / "moved"
    built_home(tmp_path).rename(moved)
    assert run_query("SELECT count(*) AS n FROM option_chains", "--home", str(moved)) == 0
    assert "│ 3 │" in capsys.readouterr().out


def test_a_home_that_stayed_put_is_not_rebuilt_on_open(tmp_path):
    home = built_home(tmp_path)
    before = layout.catalog_path(home).stat().st_ino
    connect_readonly(home).close()
    assert layout.catalog_path(home).stat().st_ino == before


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_lake_files_and_the_catalog_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        home = built_home(tmp_path)
    finally:
        os.umask(previous)
    lake_file = layout.partition_dir(home, "option_chains", DAY) / layout.DATA_FILE
    assert stat.S_IMODE(lake_file.stat().st_mode) == mode
    assert stat.S_IMODE(layout.catalog_path(home).stat().st_mode) == mode
