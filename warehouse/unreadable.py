"""Lake files that cannot be read: an error that names the file, and moving such a file aside.

A truncated or overwritten Parquet file fails as soon as its footer (the schema and where the
row groups are) is read, one small read per file, so the catalog checks every file before it
builds its views and one bad file never takes down the queries of the rest. A file found
unreadable is renamed into `$IBW_HOME/unreadable/<when>/` under its path in the lake (outside
the lake, so no view or scan sees it) with a JSON record beside it: where it was, why it could
not be read, and when it was moved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from warehouse import layout
from warehouse.parquet import fsync_dir

MAX_REASON = 200  # characters of the reader's own message quoted in the sentence


class UnreadableFile(ValueError):
    """A lake file that is not readable Parquet; its `sentence` names it and the repair (the
    command line and Dagster show an error's `sentence` as it is)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = one_line(reason)
        super().__init__(self.sentence)

    @property
    def sentence(self) -> str:
        quoted = self.reason
        if len(quoted) > MAX_REASON:
            quoted = quoted[: MAX_REASON - 1] + "…"
        return (
            f'{self.path}: not a readable Parquet file ("{quoted}"); run `ibw verify` to move '
            "it aside and return what it held to the gaps."
        )


@dataclass(frozen=True)
class SetAside:
    """One unreadable file moved out of the lake."""

    path: Path  # where it was
    moved_to: Path
    reason: str


# What the reader raises for a file that is not valid Parquet (polars panics on some damage).
# An OSError (no permission, no file) says nothing about the file's content and is not caught.
_BROKEN = (pl.exceptions.PolarsError, pl.exceptions.PanicException, ValueError)


def problem(path: Path, *, whole: bool = False) -> str | None:
    """Why `path` is not readable Parquet, in one line, or None when it is (or is gone).

    Reads the footer only, unless `whole`: then every page too (a damaged page behind an
    intact footer fails only there)."""
    try:
        if whole:
            pl.read_parquet(path)
        else:
            pl.read_parquet_schema(path)
    except FileNotFoundError:
        return None  # moved or replaced meanwhile: nothing to set aside
    except _BROKEN as exc:
        return one_line(exc) or type(exc).__name__
    return None


def read(path: Path, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """One file (or some of its columns); an unreadable one raises `UnreadableFile` naming it."""
    try:
        return pl.read_parquet(path, columns=list(columns) if columns else None)
    except _BROKEN as exc:
        raise UnreadableFile(path, str(exc)) from exc


def read_many(files: Sequence[Path], columns: Sequence[str]) -> pl.DataFrame:
    """Many files in one scan (a sensor tick reads every ledger); an unreadable one is named."""
    try:
        return pl.scan_parquet(list(files), hive_partitioning=False).select(columns).collect()
    except _BROKEN as exc:
        for path in files:
            if reason := problem(path, whole=True):
                raise UnreadableFile(path, reason) from exc
        raise


def set_aside(home: Path, path: Path, reason: str) -> SetAside | None:
    """Move `path` (a file in the lake) into the unreadable folder and write its record beside
    it; None when it is already gone (another process moved it first)."""
    now = datetime.now(UTC)
    target = layout.unreadable_dir(home) / now.strftime("%Y%m%dT%H%M%S%fZ")
    target = target / path.relative_to(layout.lake_dir(home))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(path, target)  # same file system: the lake loses the file in one step
    except FileNotFoundError:
        return None
    fsync_dir(path.parent)
    record = {"path": str(path), "reason": reason, "moved_at": now.isoformat()}
    target.with_name(target.name + ".json").write_text(json.dumps(record, indent=1) + "\n")
    fsync_dir(target.parent)
    return SetAside(path, target, reason)


def set_aside_unreadable(home: Path, *, whole: bool = False) -> list[SetAside]:
    """Check every file of the lake (footers only, unless `whole`) and move the unreadable
    ones aside; returns what was moved."""
    moved = []
    for path in layout.data_files(layout.lake_dir(home)):
        reason = problem(path, whole=whole)
        if reason and (done := set_aside(home, path, reason)):
            moved.append(done)
    return moved


def one_line(text: object) -> str:
    """A reader's message on one line: control characters and line breaks become spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
