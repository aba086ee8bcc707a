"""IB's head timestamps (the earliest data per contract, whatToShow and hours), kept so each is
asked for once: a head-timestamp request spends small-bar pacing budget."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from warehouse import layout
from warehouse.parquet import write_partition
from warehouse.unreadable import read, read_many

DATASET = "head_timestamps"
SCHEMA = {
    "con_id": pl.Int64,
    "what_to_show": pl.String,
    "use_rth": pl.Boolean,
    "head": pl.Datetime("us", "UTC"),
    "fetched_at": pl.Datetime("us", "UTC"),
}


def _partition(con_id: int) -> dict[str, str]:
    return {"con_id": str(con_id)}


def read_head(home: Path, con_id: int, what_to_show: str, use_rth: bool) -> datetime | None:
    """The stored head timestamp, or None when it was never fetched."""
    found = _read(home, con_id).filter(
        (pl.col("what_to_show") == what_to_show) & (pl.col("use_rth") == use_rth)
    )
    return found["head"][0] if found.height else None


def write_head(
    home: Path, con_id: int, what_to_show: str, use_rth: bool, head: datetime, now: datetime
) -> None:
    row = pl.DataFrame(
        [{"con_id": con_id, "what_to_show": what_to_show, "use_rth": use_rth, "head": head,
          "fetched_at": now}],
        schema=SCHEMA,
    )  # fmt: skip
    kept = _read(home, con_id).filter(
        (pl.col("what_to_show") != what_to_show) | (pl.col("use_rth") != use_rth)
    )
    write_partition(home, DATASET, pl.concat([kept, row]), _partition(con_id))


def _read(home: Path, con_id: int) -> pl.DataFrame:
    path = layout.partition_dir(home, DATASET, _partition(con_id)) / layout.DATA_FILE
    if not path.is_file():
        return pl.DataFrame(schema=SCHEMA)
    return read(path).select(list(SCHEMA)).cast(SCHEMA)


def read_all(home: Path) -> dict[tuple[int, str, bool], datetime]:
    """Every stored head timestamp from one scan, by (con_id, what_to_show, use_rth)."""
    files = layout.data_files(layout.dataset_dir(home, DATASET))
    if not files:
        return {}
    found = read_many(files, list(SCHEMA))
    return {(c, w, r): h for c, w, r, h, _ in found.cast(SCHEMA).iter_rows()}
