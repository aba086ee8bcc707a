"""The coverage ledger: for each series and expected session, what the warehouse holds.

A series is (conId, bar size, whatToShow, useRTH). Each expected session is `complete`, `empty`
(IB confirmed there is no data) or `failed` (IB's code and text, attempts, next retry). A gap is
expected minus (complete ∪ empty), never a hole guessed from the bars. Transient failures come
back after an exponential backoff; permanent ones (no permission, no security definition, an
expired contract) stay out of the gaps until someone clears them. One series is one partition,
replaced atomically, so a `kill -9` leaves either the old ledger or the new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from warehouse import layout
from warehouse.parquet import write_partition
from warehouse.schemas import Coverage
from warehouse.unreadable import read, read_many

DATASET = "coverage"
STATUSES = ("complete", "empty", "failed")
FIRST_RETRY = timedelta(minutes=5)
LAST_RETRY = timedelta(days=1)
_UTC = pl.Datetime("us", "UTC")
LEDGER_SCHEMA = {
    "con_id": pl.Int64,
    "bar_size": pl.String,
    "what_to_show": pl.String,
    "use_rth": pl.Boolean,
    "session_date": pl.Date,
    "status": pl.String,
    "code": pl.Int32,
    "text": pl.String,
    "permanent": pl.Boolean,
    "attempts": pl.Int32,
    "next_retry": _UTC,
    "updated_at": _UTC,
}


@dataclass(frozen=True)
class Series:
    con_id: int
    bar_size: str
    what_to_show: str
    use_rth: bool

    @property
    def label(self) -> str:
        """For people: `conId 265598 1 min TRADES rth`."""
        hours = "rth" if self.use_rth else "all hours"
        return f"conId {self.con_id} {self.bar_size} {self.what_to_show} {hours}"

    def partition(self) -> dict[str, str]:
        return {
            "con_id": str(self.con_id),
            "bar_size": self.bar_size,
            "what_to_show": self.what_to_show,
            "use_rth": "true" if self.use_rth else "false",
        }


def read_series(home: Path, series: Series) -> pl.DataFrame:
    """The series' ledger, one row per session it knows (empty frame when it knows none)."""
    path = layout.partition_dir(home, DATASET, series.partition()) / layout.DATA_FILE
    if not path.is_file():
        return pl.DataFrame(schema=LEDGER_SCHEMA)
    return read(path).select(list(LEDGER_SCHEMA)).cast(LEDGER_SCHEMA)


def record(
    home: Path,
    series: Series,
    sessions: Iterable[date],
    status: str,
    now: datetime,
    *,
    code: int | None = None,
    text: str | None = None,
    permanent: bool = False,
) -> pl.DataFrame:
    """Mark `sessions` with `status` and write the series' ledger back atomically.

    A failure keeps counting attempts and pushes its next retry out (5 min, doubling, at most a
    day); a success forgets earlier failures.
    """
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    days = sorted(set(sessions))
    current = read_series(home, series)
    previous = dict(
        zip(current["session_date"].to_list(), current["attempts"].to_list(), strict=True)
    )
    rows = []
    for day in days:
        failed = status == "failed"
        attempts = previous.get(day, 0) + 1 if failed else 0
        retry = now + min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LAST_RETRY)
        rows.append(
            {
                "con_id": series.con_id,
                "bar_size": series.bar_size,
                "what_to_show": series.what_to_show,
                "use_rth": series.use_rth,
                "session_date": day,
                "status": status,
                "code": code if failed else None,
                "text": text if failed else None,
                "permanent": permanent and failed,
                "attempts": attempts,
                "next_retry": retry if failed and not permanent else None,
                "updated_at": now,
            }
        )
    updated = pl.DataFrame(rows, schema=LEDGER_SCHEMA)
    kept = current.filter(~pl.col("session_date").is_in(days))
    ledger = Coverage.validate(pl.concat([kept, updated]).sort("session_date"))
    write_partition(home, DATASET, ledger, series.partition())
    return ledger


def gaps(expected: Sequence[date], ledger: pl.DataFrame, now: datetime) -> list[date]:
    """Expected sessions the warehouse still lacks and may fetch now, oldest first."""
    settled = ledger.filter(
        pl.col("status").is_in(["complete", "empty"])
        | pl.col("permanent")
        | (pl.col("next_retry") > now)
    )
    done = set(settled["session_date"].to_list())
    return sorted(day for day in expected if day not in done)


def forget(home: Path, series: Series, sessions: Iterable[date]) -> pl.DataFrame:
    """Drop what the ledger knows of `sessions`, so they are gaps again (repairs, tests)."""
    days = sorted(set(sessions))
    ledger = read_series(home, series).filter(~pl.col("session_date").is_in(days))
    write_partition(home, DATASET, ledger, series.partition())
    return ledger


def read_all(home: Path) -> dict[Series, pl.DataFrame]:
    """Every series' ledger from one scan of the dataset (a sensor tick needs them all)."""
    files = layout.data_files(layout.dataset_dir(home, DATASET))
    if not files:
        return {}
    coverage = read_many(files, list(LEDGER_SCHEMA))
    keys = ["con_id", "bar_size", "what_to_show", "use_rth"]
    parts = coverage.cast(LEDGER_SCHEMA).partition_by(keys, as_dict=True)
    return {Series(*key): frame.sort("session_date") for key, frame in parts.items()}
