"""The live datasets in the lake: atomic appends, quarantine, compaction that survives a kill at
any instant, and catalog views that never show a bar twice."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.kit.live import DAY, T0, bars, ticks
from tests.kit.scenarios import AAPL
from tests.kit.scenarios import EURUSD as EUR
from warehouse import live_streams as ls
from warehouse.catalog import connect_readonly, refresh_catalog
from warehouse.parquet import TEMP_PREFIX, TEMP_SUFFIX, read_dataset, write_file


def files(home: Path, dataset: str, day: date = DAY) -> list[str]:
    return [f.name for f in ls.day_files(home, dataset, day)]


def view(home: Path, sql: str) -> list[tuple]:
    con = connect_readonly(home)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


DUPLICATE_BARS = "SELECT con_id, time, count(*) FROM live_bars GROUP BY ALL HAVING count(*) > 1"


def test_each_append_is_a_new_whole_file_in_its_day(tmp_path: Path) -> None:
    first = ls.append(tmp_path, ls.BARS, bars(AAPL, [0, 5, 10]))
    second = ls.append(tmp_path, ls.BARS, bars(AAPL, [15]))
    assert len(first.files) == len(second.files) == 1
    assert first.files[0] != second.files[0]
    assert all(n.startswith(ls.PART_PREFIX) for n in files(tmp_path, ls.BARS))
    assert len(files(tmp_path, ls.BARS)) == 2
    assert not list(ls.day_dir(tmp_path, ls.BARS, DAY).glob(f"{TEMP_PREFIX}*"))
    stored = ls.read_day(tmp_path, ls.BARS, DAY)
    assert stored.height == 4 and stored.schema["time"] == pl.Datetime("us", "UTC")
    assert ls.stored_bar_times(tmp_path, DAY) == {
        AAPL: {int(T0.timestamp()) + s for s in (0, 5, 10, 15)}
    }


def test_an_append_across_midnight_writes_one_file_per_utc_day(tmp_path: Path) -> None:
    late = T0.replace(hour=23, minute=59, second=55)
    frame = bars(AAPL, [0, 5]).with_columns(time=pl.Series([late, late + timedelta(seconds=5)]))
    appended = ls.append(tmp_path, ls.BARS, frame)
    assert len(appended.files) == 2
    assert ls.days(tmp_path, ls.BARS) == [DAY, DAY + timedelta(days=1)]


def test_a_malformed_row_goes_to_the_quarantine_with_its_reason(tmp_path: Path) -> None:
    good = bars(AAPL, [0, 5])
    bad = bars(AAPL, [10], high=1.0)  # high under low
    off_grid = bars(AAPL, [12])
    appended = ls.append(tmp_path, ls.BARS, pl.concat([good, bad, off_grid]))
    assert appended.quarantined == 2 and appended.valid.height == 2
    assert ls.read_day(tmp_path, ls.BARS, DAY).height == 2
    rejected = read_dataset(tmp_path, "quarantine")
    reasons = sorted(rejected.get_column("reason").to_list())
    assert reasons == ["low <= open, close <= high", "time must start a 5-second bar"]
    assert set(rejected.get_column("dataset")) == {ls.BARS}
    assert json.loads(rejected.get_column("row")[0])["con_id"] == AAPL


def test_compaction_merges_and_deduplicates_bars_and_ticks(tmp_path: Path) -> None:
    ls.append(tmp_path, ls.BARS, bars(AAPL, [0, 5], received=1))
    ls.append(tmp_path, ls.BARS, bars(AAPL, [5, 10], source="refill", received=2))
    ls.append(tmp_path, ls.BARS, bars(EUR, [5], received=3))
    done = ls.compact(tmp_path, ls.BARS, DAY)
    assert (done.files_before, done.files_after, done.rows) == (3, 1, 4)
    [name] = files(tmp_path, ls.BARS)
    assert name.startswith(ls.COMPACTED_PREFIX)
    stored = ls.read_day(tmp_path, ls.BARS, DAY).sort("con_id", "time")
    assert stored.select("con_id", "source").rows() == [
        (AAPL, "stream"), (AAPL, "stream"), (AAPL, "refill"), (EUR, "stream"),
    ]  # fmt: skip

    ls.append(tmp_path, ls.TICKS, ticks(EUR, [0.1, 0.2]))
    ls.append(tmp_path, ls.TICKS, ticks(EUR, [0.1, 0.2, 0.3]))  # the first two again
    assert ls.compact(tmp_path, ls.TICKS, DAY).rows == 3


def test_compaction_is_idempotent_and_leaves_the_view_unchanged(tmp_path: Path) -> None:
    ls.append(tmp_path, ls.BARS, bars(AAPL, [0, 5], received=2))
    ls.append(tmp_path, ls.BARS, bars(AAPL, [0], source="refill", received=1))
    refresh_catalog(tmp_path)
    before = view(tmp_path, "SELECT * FROM live_bars ORDER BY time")
    assert [r[-2] for r in before] == ["refill", "stream"]  # source: the earlier arrival wins
    first = ls.compact(tmp_path, ls.BARS, DAY)
    again = ls.compact(tmp_path, ls.BARS, DAY)
    assert (again.files_before, again.files_after, again.rows) == (1, 1, first.rows)
    assert view(tmp_path, "SELECT * FROM live_bars ORDER BY time") == before


@pytest.mark.parametrize("deleted", [0, 1, 2])
def test_a_compaction_killed_before_its_deletes_finish_shows_no_duplicate(
    tmp_path: Path, deleted: int
) -> None:
    """The leftover state of a kill after the merged file landed: the merged rows and some of
    their inputs side by side. The view shows each bar once; the rerun finishes the job."""
    for start in (0, 5):
        ls.append(tmp_path, ls.BARS, bars(AAPL, [start, start + 5]))
    ls.append(tmp_path, ls.TICKS, ticks(EUR, [0.1, 0.2]))
    inputs = ls.day_files(tmp_path, ls.BARS, DAY)
    for dataset in (ls.BARS, ls.TICKS):  # what compact writes before it deletes
        merged = ls.deduplicate(dataset, ls.read_day(tmp_path, dataset, DAY))
        folder = ls.day_dir(tmp_path, dataset, DAY)
        write_file(tmp_path, folder, "compacted-000001.parquet",
                   merged.with_columns(day=pl.lit(DAY.isoformat())))  # fmt: skip
    for f in inputs[:deleted]:
        f.unlink()
    refresh_catalog(tmp_path)
    assert view(tmp_path, DUPLICATE_BARS) == []
    assert view(tmp_path, "SELECT count(*) FROM live_bars") == [(3,)]
    assert view(tmp_path, "SELECT count(*) FROM live_ticks") == [(2,)]
    assert view(tmp_path, "SELECT count(*) FROM live_ticks_files") == [(4,)]

    done = ls.compact(tmp_path, ls.BARS, DAY)
    assert (done.files_after, done.rows) == (1, 3)
    assert files(tmp_path, ls.BARS) == [f"compacted-00000{1 if deleted == 2 else 2}.parquet"]
    assert ls.compact(tmp_path, ls.TICKS, DAY).rows == 2


def test_a_killed_writers_temp_file_is_never_data(tmp_path: Path) -> None:
    ls.append(tmp_path, ls.BARS, bars(AAPL, [0]))
    folder = ls.day_dir(tmp_path, ls.BARS, DAY)
    (folder / f"{TEMP_PREFIX}abc{TEMP_SUFFIX}").write_bytes(b"PAR1 half a file")
    refresh_catalog(tmp_path)
    assert view(tmp_path, "SELECT count(*) FROM live_bars") == [(1,)]
    assert ls.compact(tmp_path, ls.BARS, DAY).rows == 1


def test_the_view_sees_new_flushes_without_a_refresh_and_never_a_bar_twice(
    tmp_path: Path,
) -> None:
    ls.append(tmp_path, ls.BARS, bars(AAPL, [0, 5]))
    refresh_catalog(tmp_path)
    con = connect_readonly(tmp_path)
    try:
        ls.append(tmp_path, ls.BARS, bars(AAPL, [5, 10], source="refill", received=9))
        assert con.sql(DUPLICATE_BARS).fetchall() == []
        rows = con.sql("SELECT epoch(time) - epoch(TIMESTAMP '2024-07-10 15:00:00'), source "
                       "FROM live_bars ORDER BY time").fetchall()  # fmt: skip
        assert rows == [(0, "stream"), (5, "stream"), (10, "refill")]
        assert con.sql("SELECT count(*) FROM live_bars_files").fetchall() == [(4,)]
    finally:
        con.close()


def test_compaction_of_an_empty_day_and_an_unknown_dataset(tmp_path: Path) -> None:
    assert ls.compact(tmp_path, ls.BARS, DAY) == ls.Compaction(0, 0, 0)
    with pytest.raises(ValueError, match="not an appended live dataset"):
        ls.compact(tmp_path, "bars", DAY)


def test_a_reader_that_listed_the_files_before_a_compaction_can_still_read_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ls.append(tmp_path, ls.BARS, bars(AAPL, [0, 5], received=1))
    ls.append(tmp_path, ls.BARS, bars(AAPL, [10], received=2))
    refresh_catalog(tmp_path)
    listed = ls.day_files(tmp_path, ls.BARS, DAY)  # a query has resolved its glob ...
    ls.compact(tmp_path, ls.BARS, DAY)  # ... and the service compacts under it
    assert sum(pl.read_parquet(f).height for f in listed) == 3
    assert view(tmp_path, "SELECT count(*) FROM live_bars") == [(3,)]
    monkeypatch.setattr(ls, "MERGED_GRACE", 0.0)  # the grace is over: the next run deletes them
    ls.append(tmp_path, ls.BARS, bars(AAPL, [15], received=3))
    ls.compact(tmp_path, ls.BARS, DAY)
    assert not any(f.exists() for f in listed)
    assert view(tmp_path, "SELECT count(*) FROM live_bars") == [(4,)]


def test_a_compaction_killed_after_its_manifest_hides_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ls.append(tmp_path, ls.BARS, bars(AAPL, [0, 5]))
    inputs = ls.day_files(tmp_path, ls.BARS, DAY)
    folder = ls.day_dir(tmp_path, ls.BARS, DAY)
    ls._write_manifest(folder, "compacted-000001.parquet", [f.name for f in inputs])  # then -9
    assert ls.day_files(tmp_path, ls.BARS, DAY) == inputs
    monkeypatch.setattr(ls, "MERGED_GRACE", 0.0)
    done = ls.compact(tmp_path, ls.BARS, DAY)  # drops the dead manifest, merges the inputs
    assert (done.files_before, done.rows) == (1, 2)
    assert ls.read_day(tmp_path, ls.BARS, DAY).height == 2
