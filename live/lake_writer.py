"""How the live service appends to the lake: one flush's rows per dataset, never raising into
the service, and the days it wrote merged every so often.

A flush a second is a file a second: `compact_if_due` merges the days written since the last
merge, in a thread, every COMPACT_EVERY seconds (safe while flushes go on), so a query of today
opens a few files, not thousands; Dagster's daily `live_compaction` does the same for the day
that ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date
from pathlib import Path

import polars as pl

from warehouse import live_streams as lake
from warehouse.catalog import refresh_catalog

log = logging.getLogger("ibw.live")

COMPACT_EVERY = 900.0  # real seconds between merges of the days' flush files (one per flush)


class LakeWriter:
    """Appends the service's rows to the appended live datasets (warehouse.live_streams)."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self._catalogued: set[str] = set()
        self._written: set[tuple[str, date]] = set()  # (dataset, day) since the last compaction
        self._compacted_at = time.monotonic()
        self._compaction: asyncio.Future | None = None

    def append(self, dataset: str, frame: pl.DataFrame) -> lake.Appended | None:
        """Store one flush of `dataset`; None when the disk refused it (logged: the rows are
        lost or kept by the caller, the service lives)."""
        try:
            appended = lake.append(self.home, dataset, frame)
        except OSError as exc:  # disk full, permissions
            log.error("could not write %d rows to %s (%s)", frame.height, dataset, exc)
            return None
        self._written |= {(dataset, d) for d in appended.valid.get_column("time").dt.date()}
        if appended.quarantined:
            log.warning(
                "%d %s rows quarantined (see the quarantine view)", appended.quarantined, dataset
            )
        if dataset not in self._catalogued and appended.files:
            self._catalogued.add(dataset)
            refresh_catalog(self.home)  # the first file of a dataset needs its view
        return appended

    def compact_if_due(self) -> None:
        """Start merging the days written, in a thread, when COMPACT_EVERY has passed."""
        idle = self._compaction is None or self._compaction.done()
        if idle and self._written and time.monotonic() - self._compacted_at >= COMPACT_EVERY:
            self._compacted_at = time.monotonic()
            written, self._written = self._written, set()
            self._compaction = asyncio.ensure_future(asyncio.to_thread(self._compact, written))

    def _compact(self, written: set[tuple[str, date]]) -> None:
        for dataset, day in sorted(written):
            try:
                lake.compact(self.home, dataset, day)
            except OSError as exc:
                log.error("could not compact %s of %s (%s)", dataset, day, exc)
