"""The live order manager's datasets: `live_orders`, `live_fills`, `live_differences`.

The journal (SQLite, owned by the live service) is the record; these are its analyst-facing
copy, one atomic Parquet partition per UTC day (`day=YYYY-MM-DD`) and dataset, rewritten whole
on every export, so a rerun replaces and a `kill -9` leaves the old or the new partition. Rows
that break a model (in `live_schemas`) go to the quarantine with their reason instead of the
dataset. No IB, no Dagster: the live package hands in plain rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from warehouse.live_schemas import DIFFERENCES, FILLS, ORDERS
from warehouse.parquet import write_partition
from warehouse.quarantine import write_quarantine
from warehouse.schemas import polars_schema
from warehouse.validation import split_valid

DATASETS = (ORDERS, FILLS, DIFFERENCES)


def write_live_dataset(
    home: Path, dataset: str, rows: Iterable[Mapping[str, Any]], origin: str
) -> dict[str, int]:
    """Write every day of `rows` (each has `day`) as that day's partition; rows per day.

    Invalid rows go to the quarantine under (dataset, origin-day), replacing the last ones.
    """
    if dataset not in DATASETS:
        raise ValueError(f"{dataset!r} is not an order dataset; use {', '.join(DATASETS)}")
    schema = polars_schema(dataset)
    by_day: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_day[str(row["day"])].append(row)
    written = {}
    for day, day_rows in sorted(by_day.items()):
        frame = pl.DataFrame(day_rows, schema=schema, orient="row")
        valid, rejected = split_valid(frame, dataset, f"{origin} {day}")
        write_quarantine(home, rejected, dataset, f"{origin} {day}")
        write_partition(home, dataset, valid, {"day": day})
        written[day] = valid.height
    return written
