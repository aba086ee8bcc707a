"""The lake on disk: paths, atomic partition writes, reads, temp files and the quarantine."""

from __future__ import annotations

import os
import time
from datetime import date

import polars as pl
import pytest

from tests.kit.warehouse import DAY, contracts, option_chain
from warehouse import layout
from warehouse.parquet import (
    STALE_TEMP_SECONDS,
    TEMP_PREFIX,
    TEMP_SUFFIX,
    read_dataset,
    write_partition,
)
from warehouse.quarantine import write_quarantine
from warehouse.validation import split_valid


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_home_is_ibw_home_or_dot_ibw_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IBW_HOME", raising=False)
    assert layout.home() == tmp_path / ".ibw"
    monkeypatch.setenv("IBW_HOME", "elsewhere")
    home = layout.home()
    assert home == tmp_path / "elsewhere"
    assert layout.lake_dir(home) == home / "lake"
    assert layout.dataset_dir(home, "option_chains") == home / "lake" / "option_chains"
    assert layout.catalog_path(home) == home / "warehouse.duckdb"


@pytest.mark.parametrize("name", ["../etc", "Bars", "", "bars;drop", "1bars"])
def test_names_that_could_escape_the_lake_or_break_sql_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="must be lowercase"):
        layout.dataset_dir(tmp_path, name)


def test_a_rerun_replaces_the_partition_and_never_appends(tmp_path):
    first = write_partition(tmp_path, "option_chains", option_chain(), DAY)
    again = write_partition(tmp_path, "option_chains", option_chain(strikes=(230.0,)), DAY)
    assert first == again == tmp_path / "lake/option_chains/snapshot_date=2024-07-10/part.parquet"
    assert files_in(first.parent) == ["part.parquet"]
    assert read_dataset(tmp_path, "option_chains").get_column("strike").to_list() == [230.0]


def test_an_unpartitioned_dataset_is_one_file(tmp_path):
    path = write_partition(tmp_path, "security_master", contracts())
    assert path == tmp_path / "lake/security_master/part.parquet"
    assert read_dataset(tmp_path, "security_master").equals(contracts())


def test_partitions_read_back_as_one_frame_with_typed_keys(tmp_path):
    for day in (date(2024, 7, 10), date(2024, 7, 11)):
        write_partition(tmp_path, "option_chains", option_chain(day), {"snapshot_date": str(day)})
    chains = read_dataset(tmp_path, "option_chains")
    assert chains.height == 6
    assert chains.schema["snapshot_date"] == pl.Date
    assert chains.get_column("snapshot_date").unique().sort().to_list() == [
        date(2024, 7, 10),
        date(2024, 7, 11),
    ]


def test_a_missing_key_column_is_stored_as_text_and_odd_values_survive(tmp_path):
    keys = {"symbol": "BRK B", "session": "..", "n": "0012"}
    path = write_partition(tmp_path, "bars", pl.DataFrame({"close": [1.0]}), keys)
    assert path.parent.name == "n=0012"
    assert ".." not in [p.name for p in path.parents]
    got = read_dataset(tmp_path, "bars")
    assert got.row(0, named=True) == {"close": 1.0, "symbol": "BRK B", "session": "..", "n": "0012"}


def test_a_partition_whose_rows_disagree_with_its_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="snapshot_date=2024-07-11"):
        write_partition(tmp_path, "option_chains", option_chain(), {"snapshot_date": "2024-07-11"})
    assert read_dataset(tmp_path, "option_chains").is_empty()


def test_a_dataset_never_written_reads_as_an_empty_frame(tmp_path):
    empty = read_dataset(tmp_path, "option_chains")
    assert empty.shape == (0, 0)


def test_temp_files_of_killed_writers_are_never_read_and_stale_ones_are_cleaned(tmp_path):
    path = write_partition(tmp_path, "option_chains", option_chain(), DAY)
    stale = path.parent / f"{TEMP_PREFIX}deadbeef{TEMP_SUFFIX}"
    fresh = path.parent / f"{TEMP_PREFIX}cafebabe{TEMP_SUFFIX}"
    for tmp in (stale, fresh):
        # A killed writer leaves a complete-looking Parquet file under a temp name.
        option_chain(strikes=(999.0,)).write_parquet(tmp)
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    assert read_dataset(tmp_path, "option_chains").height == 3
    write_partition(tmp_path, "option_chains", option_chain(), DAY)
    assert not stale.exists()
    assert fresh.exists(), "a young temp file may belong to a writer still running"
    assert read_dataset(tmp_path, "option_chains").height == 3


def test_a_failed_write_keeps_the_old_partition_and_leaves_no_temp_file(tmp_path):
    path = write_partition(tmp_path, "option_chains", option_chain(), DAY)
    unwritable = option_chain().with_columns(pl.Series("blob", [object()] * 3, dtype=pl.Object))
    with pytest.raises(pl.exceptions.PolarsError):
        write_partition(tmp_path, "option_chains", unwritable, DAY)
    assert files_in(path.parent) == ["part.parquet"]
    assert read_dataset(tmp_path, "option_chains").equals(option_chain())


def test_partitions_with_different_columns_are_unioned_by_name(tmp_path):
    with_vwap = pl.DataFrame({"close": [2.0], "vwap": [2.5]})
    write_partition(tmp_path, "bars", pl.DataFrame({"close": [1.0]}), {"symbol": "A"})
    write_partition(tmp_path, "bars", with_vwap, {"symbol": "B"})
    got = read_dataset(tmp_path, "bars").sort("symbol")
    assert got.columns == ["close", "symbol", "vwap"]
    assert got.get_column("vwap").to_list() == [None, 2.5]


def rejected_chain(origin: str, strikes: tuple[float, ...]) -> pl.DataFrame:
    _, rejected = split_valid(option_chain(strikes=strikes), "option_chains", origin)
    return rejected


def test_quarantine_is_one_partition_per_origin_replaced_on_rerun(tmp_path):
    origin = "option_chains/2024-07-10"
    path = write_quarantine(tmp_path, rejected_chain(origin, (-1.0, -2.0)), "option_chains", origin)
    assert path is not None
    assert path.parent.name == "origin=option_chains%2F2024-07-10"
    assert path.parent.parent.name == "dataset=option_chains"
    other = write_quarantine(tmp_path, rejected_chain("other", (-3.0,)), "option_chains", "other")
    assert other is not None

    write_quarantine(tmp_path, rejected_chain(origin, (-5.0,)), "option_chains", origin)
    stored = read_dataset(tmp_path, "quarantine").sort("origin")
    assert stored.get_column("origin").to_list() == ["option_chains/2024-07-10", "other"]
    assert stored.get_column("reason").to_list() == [
        "strike: must be > 0 (got -5.0); moneyness: must be > 0 (got -0.023809523809523808)",
        "strike: must be > 0 (got -3.0); moneyness: must be > 0 (got -0.014285714285714285)",
    ]


def test_a_clean_rerun_removes_the_origins_quarantine(tmp_path):
    origin = "run-1"
    path = write_quarantine(tmp_path, rejected_chain(origin, (-1.0,)), "option_chains", origin)
    assert path is not None and path.exists()
    clean = rejected_chain(origin, (200.0,))
    assert clean.is_empty()
    assert write_quarantine(tmp_path, clean, "option_chains", origin) is None
    assert not path.exists()
    assert read_dataset(tmp_path, "quarantine").is_empty()
    assert write_quarantine(tmp_path, clean, "option_chains", origin) is None
