"""Atomic Parquet partitions: one file per partition, replaced whole, never half-written.

A writer writes a hidden temp file in the partition's folder, fsyncs it, renames it over
`part.parquet` and fsyncs the folder, so a reader (or a `kill -9`) sees the old file or the new
one, never a mix, and a rerun replaces rather than appends. Temp files end in `.tmp`: DuckDB and
polars globs do match hidden `*.parquet` files, so the dot alone would not keep them out. Files
get the mode the process umask gives, like the catalog: whoever may open one may read the other.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

import polars as pl

from warehouse import layout

TEMP_PREFIX = f".{layout.DATA_FILE}."
TEMP_SUFFIX = ".tmp"
# A temp file this old belongs to a writer that died; a live writer finishes in far less.
STALE_TEMP_SECONDS = 3600.0


def write_partition(
    home: Path, dataset: str, df: pl.DataFrame, partition: dict[str, str] | None = None
) -> Path:
    """Write `df` as the whole of one partition, replacing what was there; returns the file."""
    partition = partition or {}
    df = _with_partition_columns(df, partition)
    return write_file(home, layout.partition_dir(home, dataset, partition), layout.DATA_FILE, df)


def write_file(home: Path, folder: Path, name: str, df: pl.DataFrame) -> Path:
    """Write `df` as `folder/name` (replacing it): temp file, fsync, rename, folder fsync."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        _fsync_parents(folder, home)
    remove_stale_temps(folder)
    target = folder / name
    fd, tmp = create_temp(folder)
    try:
        with os.fdopen(fd, "wb") as f:
            df.write_parquet(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)
    return target


def create_temp(folder: Path) -> tuple[int, Path]:
    """A new temp file in `folder`, open for writing, with the mode the umask gives
    (`tempfile.mkstemp` makes 0600, which would hide the lake from readers of the catalog)."""
    tmp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp


def remove_partition(home: Path, dataset: str, partition: dict[str, str] | None = None) -> bool:
    """Delete one partition's file (an unlink is atomic); True if there was one."""
    folder = layout.partition_dir(home, dataset, partition)
    try:
        (folder / layout.DATA_FILE).unlink()
    except FileNotFoundError:
        return False
    fsync_dir(folder)
    return True


def read_partition(home: Path, dataset: str, partition: dict[str, str]) -> pl.DataFrame:
    """One partition as written (its partition columns are in its file), or an empty frame
    with no columns when there is none."""
    files = layout.data_files(layout.partition_dir(home, dataset, partition))
    return pl.read_parquet(files, hive_partitioning=False) if files else pl.DataFrame()


def read_dataset(home: Path, dataset: str) -> pl.DataFrame:
    """Every partition of a dataset as one frame (columns unioned by name, hive keys decoded).

    A dataset not written yet reads as an empty frame with no columns.
    """
    files = layout.data_files(layout.dataset_dir(home, dataset))
    if not files:
        return pl.DataFrame()
    frames = [pl.scan_parquet(f, hive_partitioning=True) for f in files]
    return pl.concat(frames, how="diagonal_relaxed").collect()


def remove_stale_temps(folder: Path, older_than: float = STALE_TEMP_SECONDS) -> None:
    """Delete temp files left by killed writers (young ones may belong to a live writer)."""
    cutoff = time.time() - older_than
    for tmp in folder.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()


def _with_partition_columns(df: pl.DataFrame, partition: dict[str, str]) -> pl.DataFrame:
    """Store each partition key in the file too, so its type comes from the data, not a guess
    from the folder name (polars reads a folder `sym=0012` as the integer 12)."""
    for key, value in partition.items():
        if key not in df.columns:
            df = df.with_columns(pl.lit(str(value), dtype=pl.String).alias(key))
            continue
        found = df.get_column(key).cast(pl.String).unique().to_list()
        if any(v != str(value) for v in found):
            raise ValueError(f"partition {key}={value} but the frame's {key} holds {found[:5]}")
    return df


def fsync_dir(folder: Path) -> None:
    """Make a rename, create or delete in `folder` durable (the entry lives in the folder)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_parents(folder: Path, stop: Path) -> None:
    """Make freshly created partition folders durable: each one's entry lives in its parent."""
    for parent in [folder, *folder.parents]:
        fsync_dir(parent)
        if parent == stop:
            return
