"""The quarantine dataset: the rows a dataset refused, one partition per (dataset, origin).

An origin is whatever produced the rows (an asset partition, a run, a file); keying the partition
by it means a rerun of the same origin replaces its rejects instead of piling up copies, and a
clean rerun clears them.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from warehouse.parquet import remove_partition, write_partition
from warehouse.schemas import polars_schema

DATASET = "quarantine"


def write_quarantine(home: Path, rows: pl.DataFrame, dataset: str, origin: str) -> Path | None:
    """Store the rejected rows of one (dataset, origin), replacing the last ones.

    No rows removes the old partition and returns None. The origin is percent-encoded in the
    folder name, and DuckDB and polars decode it, so readers see it unchanged.
    """
    partition = {"dataset": dataset, "origin": origin}
    if rows.is_empty():
        remove_partition(home, DATASET, partition)
        return None
    stored = polars_schema(DATASET)
    if set(rows.columns) != set(stored):
        raise ValueError(f"quarantine rows need the columns {', '.join(stored)}")
    return write_partition(home, DATASET, rows.select(list(stored)).cast(stored), partition)
