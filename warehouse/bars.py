"""The bars dataset: one partition per (series, year), replaced a session at a time.

Partitions are `con_id / bar_size / what_to_show / use_rth / year`: a year of 1-min bars is one
file of 100-250k rows (about 2-5 MB), a year of daily bars a few hundred rows, so a series is a
handful of files and a scan by contract, bar size or year prunes folders. A write names the
sessions it completes: their old rows go, the new ones come in, and the year's file is replaced
atomically, so a rerun replaces and a `kill -9` leaves either the old file or the new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import polars as pl

from shared_state.locks import Hold, try_lock
from warehouse import layout
from warehouse.ledger import Series
from warehouse.parquet import remove_partition, write_partition
from warehouse.schemas import polars_schema
from warehouse.unreadable import read

DATASET = "bars"


def partition(series: Series, year: int) -> dict[str, str]:
    return series.partition() | {"year": str(year)}


def year_of(session: date) -> int:
    """The year whose file holds a session's bars."""
    return session.year


def year_file(home: Path, series: Series, year: int) -> Path:
    return layout.partition_dir(home, DATASET, partition(series, year)) / layout.DATA_FILE


@contextmanager
def lock_series(home: Path, series: Series) -> Iterator[Hold]:
    """Hold the series' writer lock if nobody else does; yields a `Hold`, true when held."""
    with try_lock(home, f"bars {series}") as held:
        yield held


def read_year(home: Path, series: Series, year: int) -> pl.DataFrame:
    """One year of a series as stored (empty, with the dataset's columns, when none is)."""
    stored = polars_schema(DATASET)
    path = year_file(home, series, year)
    if not path.is_file():
        return pl.DataFrame(schema=stored)
    return read(path).select(list(stored)).cast(stored)


def years(home: Path, series: Series) -> list[int]:
    """The years a series has files for, oldest first."""
    folder = layout.partition_dir(home, DATASET, series.partition())
    found = [
        p.name.split("=", 1)[1] for p in folder.glob("year=*") if (p / layout.DATA_FILE).is_file()
    ]
    return sorted(int(y) for y in found)


def sessions(home: Path, series: Series) -> set[date]:
    """The sessions a series has bars for (one column of each year's file)."""
    found: set[date] = set()
    for year in years(home, series):
        found.update(read(year_file(home, series, year), ["session_date"])["session_date"])
    return found


def read_series(home: Path, series: Series) -> pl.DataFrame:
    """Every stored bar of a series, oldest first."""
    frames = [read_year(home, series, year) for year in years(home, series)]
    return pl.concat(frames) if frames else pl.DataFrame(schema=polars_schema(DATASET))


def write_sessions(home: Path, series: Series, bars: pl.DataFrame, sessions: Iterable[date]) -> int:
    """Make `bars` the whole content of `sessions` (validated rows of this series); returns the
    number of files replaced. A session with no bars ends with none (IB confirmed it empty)."""
    days = sorted(set(sessions))
    stored = polars_schema(DATASET)
    bars = bars.select(list(stored))
    outside = bars.filter(~pl.col("session_date").is_in(days)).height
    if outside:
        raise ValueError(f"{outside} bars are outside the sessions being written")
    written = 0
    for year in sorted({year_of(day) for day in days}):
        of_year = [day for day in days if year_of(day) == year]
        kept = read_year(home, series, year).filter(~pl.col("session_date").is_in(of_year))
        new = bars.filter(pl.col("session_date").is_in(of_year))
        merged = pl.concat([kept, new]).sort("ts")
        if merged.is_empty():
            remove_partition(home, DATASET, partition(series, year))
            continue
        write_partition(home, DATASET, merged, partition(series, year))
        written += 1
    return written


def remove_sessions(home: Path, series: Series, sessions: Iterable[date]) -> int:
    """Delete the bars of `sessions` (for tests that inject gaps, and for repairs)."""
    return write_sessions(home, series, pl.DataFrame(schema=polars_schema(DATASET)), sessions)
