"""The live datasets the `ibw live` service appends to the lake as they come: ticks, 5-second
bars, and the intraday positions, P&L and account values.

Owns the append of one flush, the daily compaction, the reads the service and the observer
need, and the deduplicating SQL the catalog puts in front of the raw files; the models are in
`live_schemas`. No IB here: the service turns ib_async's objects into frames.

Layout: `lake/<dataset>/day=YYYY-MM-DD/` (the UTC day of `time`) holds one `part-<unique>.parquet`
per flush and, after compaction, `compacted-<n>.parquet`. Every file is written whole under a
temp name, fsynced and renamed, so a `kill -9` never leaves half a file and a crashed run's files
stay readable. Compaction writes a hidden manifest (its output and inputs), then the merged
file, and deletes the inputs only a grace period later (readers may be opening them). Rows sit
twice on disk for a while, never zero times, even after a kill: `day_files` hides the inputs
of a manifest whose output exists, the catalog's views deduplicate (a bar by (con_id, time), a
tick by all its fields) and the next compaction merges again.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from shared_state.locks import try_lock
from warehouse import layout
from warehouse.live_schemas import ACCOUNT_VALUES, BARS, PNL, POSITIONS, TICKS
from warehouse.parquet import create_temp, fsync_dir, write_file
from warehouse.quarantine import write_quarantine
from warehouse.schemas import polars_schema
from warehouse.validation import split_valid

PART_PREFIX = "part-"
COMPACTED_PREFIX = "compacted-"
MANIFEST_PREFIX = ".merged-"  # hidden, not Parquet: no reader's glob matches it
MERGED_GRACE = 300.0  # seconds merged files outlive their compaction (longer than any query)
RAW_SUFFIX = "_files"  # the catalog's view of the raw files, duplicates and all
_COMPACTED = re.compile(rf"{COMPACTED_PREFIX}(\d+)\.parquet")

# The catalog's view of each live dataset over its raw files (`{raw}`): what analysts query.
# The ORDER BY is `compact`'s choice too, so compacting never changes what the view shows.
DEDUPLICATED_VIEWS = {
    BARS: "SELECT * FROM {raw} QUALIFY row_number() OVER "
    '(PARTITION BY "day", con_id, "time" ORDER BY received_at, source) = 1',
    **{name: "SELECT DISTINCT * FROM {raw}" for name in (TICKS, POSITIONS, PNL, ACCOUNT_VALUES)},
}
# The order rows are kept in (after deduplication) and the keys of one row of each dataset.
ROW_ORDER = {
    TICKS: ("con_id", "time", "received_at"),
    BARS: ("con_id", "time"),
    POSITIONS: ("account", "con_id", "time"),
    PNL: ("account", "con_id", "time"),
    ACCOUNT_VALUES: ("account", "key", "currency", "time"),
}
APPENDED = tuple(ROW_ORDER)


@dataclass(frozen=True)
class Appended:
    """What one append stored: its files, the rows accepted, and how many were quarantined."""

    files: list[Path]
    valid: pl.DataFrame
    quarantined: int


@dataclass(frozen=True)
class Compaction:
    """One day's compaction: files before and after, the rows kept, and why it was skipped."""

    files_before: int
    files_after: int
    rows: int
    skipped: str = ""


def _check(dataset: str) -> str:
    if dataset not in ROW_ORDER:
        raise ValueError(
            f"{dataset!r} is not an appended live dataset; use one of {list(APPENDED)}"
        )
    return dataset


def day_dir(home: Path, dataset: str, day: date) -> Path:
    return layout.partition_dir(home, _check(dataset), {"day": day.isoformat()})


def day_files(home: Path, dataset: str, day: date) -> list[Path]:
    """The day's current data files (flushes and compactions), oldest first. Temp files never
    count, nor files a compaction has merged (kept a while for readers that listed them)."""
    folder = day_dir(home, dataset, day)
    files = layout.data_files(folder)
    merged = _merged_names(folder, {f.name for f in files})
    return [f for f in files if f.name not in merged]


def days(home: Path, dataset: str) -> list[date]:
    """The days a live dataset holds files for, oldest first."""
    folder = layout.dataset_dir(home, _check(dataset))
    found = [p.name.split("=", 1)[1] for p in folder.glob("day=*") if layout.data_files(p)]
    return sorted(date.fromisoformat(d) for d in found)


def append(home: Path, dataset: str, df: pl.DataFrame) -> Appended:
    """Store one flush: a new file per UTC day touched; invalid rows go to the quarantine."""
    stored = polars_schema(_check(dataset))
    name = _unique_name()
    origin = f"live {name}"  # one quarantine partition per flush: a later one never replaces it
    valid, rejected = split_valid(df, dataset, origin)
    if rejected.height:
        write_quarantine(home, rejected, dataset, origin)
    files = []
    if valid.height:
        valid = valid.with_columns(day=pl.col("time").dt.date().cast(pl.String))
        for (day,), rows in valid.group_by("day", maintain_order=True):
            folder = day_dir(home, dataset, date.fromisoformat(str(day)))
            files.append(write_file(home, folder, f"{PART_PREFIX}{name}.parquet", rows))
    return Appended(files, valid.select(list(stored)), rejected.height)


def read_day(home: Path, dataset: str, day: date, columns: list[str] | None = None) -> pl.DataFrame:
    """A day's rows as stored, duplicates included (empty, with the columns, when none is)."""
    stored = polars_schema(_check(dataset))
    columns = columns or list(stored)
    files = day_files(home, dataset, day)
    if not files:
        return pl.DataFrame(schema={c: stored[c] for c in columns})
    frames = [pl.read_parquet(f, columns=columns, hive_partitioning=False) for f in files]
    return pl.concat(frames).cast({c: stored[c] for c in columns})


@dataclass(frozen=True)
class DaySummary:
    """What a live dataset holds for one day, as stored (for the Dagster observer)."""

    files: int
    rows: int
    newest: datetime | None  # the latest `time`


def summarize_day(home: Path, dataset: str, day: date) -> DaySummary:
    files = day_files(home, dataset, day)
    if not files:
        return DaySummary(0, 0, None)
    scan = pl.concat([pl.scan_parquet(f, hive_partitioning=False).select("time") for f in files])
    rows, newest = scan.select(pl.len(), pl.col("time").max()).collect().row(0)
    return DaySummary(len(files), int(rows), newest)


def stored_bar_times(home: Path, day: date) -> dict[int, set[int]]:
    """The bar starts (epoch seconds) stored for each conId on one UTC day."""
    frame = read_day(home, BARS, day, ["con_id", "time"]).unique()
    frame = frame.with_columns(pl.col("time").dt.epoch("s"))
    out: dict[int, set[int]] = {}
    for (con_id,), rows in frame.group_by("con_id"):
        out[int(con_id)] = set(rows.get_column("time").to_list())
    return out


def deduplicate(dataset: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The rows the catalog's view shows: a bar once per (con_id, time), any other row once."""
    if _check(dataset) == BARS:
        ordered = frame.sort("con_id", "time", "received_at", "source")
        return ordered.unique(["con_id", "time"], keep="first", maintain_order=True)
    return frame.unique(maintain_order=True).sort(*ROW_ORDER[dataset], nulls_last=True)


def compact(home: Path, dataset: str, day: date) -> Compaction:
    """Merge a day's files into one deduplicated `compacted-<n>.parquet`; safe to rerun and to
    kill at any instant (see the module docstring). Files appended meanwhile are left alone.

    The merged files are not deleted at once: a reader (a DuckDB query, `read_day`) may have
    listed them a moment ago and be about to open them. A hidden manifest names them, and a
    later compaction deletes them once MERGED_GRACE has passed; until then the views show their
    rows once, as they show any duplicate."""
    folder = day_dir(home, dataset, day)
    with try_lock(home, f"compact {dataset} {day}") as held:
        if not held:
            files = day_files(home, dataset, day)
            return Compaction(len(files), len(files), 0, "another process is compacting this day")
        _delete_merged(folder)
        files = day_files(home, dataset, day)
        if not files:
            return Compaction(0, 0, 0)
        if len(files) == 1 and _COMPACTED.fullmatch(files[0].name):
            rows = pl.scan_parquet(files[0], hive_partitioning=False).select(pl.len()).collect()
            return Compaction(1, 1, int(rows.item()))
        stored = polars_schema(dataset)
        frames = [pl.read_parquet(f, hive_partitioning=False) for f in files]
        merged = deduplicate(dataset, pl.concat(frames).select(list(stored)).cast(stored))
        merged = merged.with_columns(day=pl.lit(day.isoformat(), pl.String))
        on_disk = layout.data_files(folder)  # merged ones too: a number is never reused
        numbers = [int(m.group(1)) for f in on_disk if (m := _COMPACTED.fullmatch(f.name))]
        output = f"{COMPACTED_PREFIX}{1 + max(numbers, default=0):06d}.parquet"
        held.confirm()  # a lock the server dropped meanwhile: another may be compacting
        # The manifest first: it hides its inputs only once its output exists, so a reader
        # sees the inputs or the output, never both, and a kill between the two hides nothing.
        _write_manifest(folder, output, [f.name for f in files])
        write_file(home, folder, output, merged)
        return Compaction(len(files), 1, merged.height)


def _manifests(folder: Path) -> list[tuple[Path, str, list[str]]]:
    """Each compaction's manifest: (its path, the file it wrote, the files it merged)."""
    found = []
    for manifest in sorted(folder.glob(f"{MANIFEST_PREFIX}*")):
        with contextlib.suppress(FileNotFoundError):
            output, *inputs = manifest.read_text().split()
            found.append((manifest, output, inputs))
    return found


def _merged_names(folder: Path, present: set[str]) -> set[str]:
    """Files a compaction merged into an output that exists (kept a while for readers)."""
    return {n for _, output, inputs in _manifests(folder) if output in present for n in inputs}


def _delete_merged(folder: Path) -> None:
    """Delete what earlier compactions merged once no reader can still be opening it, and the
    manifests of compactions that died before writing their output."""
    if not folder.is_dir():
        return
    cutoff = time.time() - MERGED_GRACE
    for manifest, output, inputs in _manifests(folder):
        with contextlib.suppress(FileNotFoundError):
            if manifest.stat().st_mtime > cutoff:
                continue
            if (folder / output).exists():
                for name in inputs:
                    with contextlib.suppress(FileNotFoundError):
                        (folder / name).unlink()
            manifest.unlink()
    fsync_dir(folder)


def _write_manifest(folder: Path, output: str, inputs: list[str]) -> None:
    fd, tmp = create_temp(folder)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join([output, *inputs]))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / f"{MANIFEST_PREFIX}{output.removesuffix('.parquet')}")
    fsync_dir(folder)


def _unique_name() -> str:
    """Sorts by creation time; the pid and random part keep concurrent writers apart."""
    return f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
