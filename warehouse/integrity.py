"""The lake is the truth and the ledger its index: sessions the ledger calls complete that the
lake does not hold go back to the gaps, so the next backfill refetches them.

Two depths. The cheap one lists a series' year files: a session called complete in a year that
has no file (deleted, or moved aside as unreadable) is lost. The backfill applies it to each
series before filling it (reading the footers of its year files first), and `ibw plan` and the
sensor when they price one, so none of them calls a lost year held. The thorough one, `verify`
(`ibw verify`), reads every file of the lake whole, moves the unreadable ones aside, then
compares each series' complete sessions with the sessions its bars actually hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from warehouse import bars as bar_store
from warehouse import layout, ledger
from warehouse.unreadable import SetAside, problem, set_aside, set_aside_unreadable


def _complete(held: pl.DataFrame) -> list[date]:
    return held.filter(pl.col("status") == "complete")["session_date"].to_list()


def lost_years(home: Path, series: ledger.Series, held: pl.DataFrame) -> list[date]:
    """Sessions `held` (the series' ledger) calls complete in years with no bars file."""
    present = set(bar_store.years(home, series))
    return sorted(d for d in _complete(held) if bar_store.year_of(d) not in present)


def lake_backed(home: Path, series: ledger.Series, held: pl.DataFrame) -> pl.DataFrame:
    """`held` without the sessions lost with their year's file: the ledger as a repair leaves
    it, for planning without writing."""
    lost = lost_years(home, series, held)
    return held.filter(~pl.col("session_date").is_in(lost)) if lost else held


def return_lost_years(home: Path, series: ledger.Series) -> list[date]:
    """Move the series' unreadable year files aside (footers only: a handful of small reads),
    then forget the sessions lost with their year's file, so they are gaps again. Call it
    holding the series' writer lock."""
    for year in bar_store.years(home, series):
        path = bar_store.year_file(home, series, year)
        if reason := problem(path):
            set_aside(home, path, reason)
    lost = lost_years(home, series, ledger.read_series(home, series))
    if lost:
        ledger.forget(home, series, lost)
    return lost


def lost_sessions(home: Path, series: ledger.Series, held: pl.DataFrame) -> list[date]:
    """Sessions `held` calls complete that have no bars in the lake (reads the sessions of
    every year file of the series)."""
    with_bars = bar_store.sessions(home, series)
    return sorted(d for d in _complete(held) if d not in with_bars)


def lost_everywhere(home: Path) -> dict[ledger.Series, list[date]]:
    """Every series' lost sessions, repairing nothing (the Dagster check)."""
    found = {}
    for series, held in ledger.read_all(home).items():
        if lost := lost_sessions(home, series, held):
            found[series] = lost
    return found


def describe_lost(home: Path, series: ledger.Series, lost: list[date]) -> str:
    """One line naming the series, the lost sessions and the year files that should hold them."""
    span = f"{lost[0]}" if len(lost) == 1 else f"{lost[0]} .. {lost[-1]}"
    years = sorted({bar_store.year_of(day) for day in lost})
    files = ", ".join(str(bar_store.year_file(home, series, year)) for year in years)
    return f"{series.label}: {len(lost)} sessions called complete have no bars ({span}) in {files}"


@dataclass
class Verification:
    """What `verify` checked and repaired."""

    files: int = 0
    set_aside: list[SetAside] = field(default_factory=list)
    series: int = 0
    returned: dict[ledger.Series, list[date]] = field(default_factory=dict)
    busy: list[ledger.Series] = field(default_factory=list)  # being filled: checked next time

    @property
    def clean(self) -> bool:
        return not self.set_aside and not self.returned


def verify(home: Path) -> Verification:
    """Read every lake file whole, move the unreadable ones aside, and return to the gaps every
    session the ledger calls complete whose bars are not in the lake."""
    result = Verification(files=len(layout.data_files(layout.lake_dir(home))))
    result.set_aside = set_aside_unreadable(home, whole=True)
    for series in ledger.read_all(home):
        result.series += 1
        with bar_store.lock_series(home, series) as held:
            if not held:
                result.busy.append(series)
                continue
            lost = lost_sessions(home, series, ledger.read_series(home, series))
            if lost:
                ledger.forget(home, series, lost)
                result.returned[series] = lost
    return result
