"""The `alerts` dataset: every alert fired or resolved, by the live service or by Dagster.

Alerts are rare and come from several processes at once, so each one is its own small file,
`lake/alerts/day=YYYY-MM-DD/alert-<unique>.parquet` (the UTC day of `at`), written whole under a
temp name and renamed: two writers never touch the same file and a `kill -9` leaves none half
written. The model is `live_schemas.AlertRow`; a row that breaks it goes to the quarantine.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from warehouse import layout
from warehouse.catalog import refresh_catalog
from warehouse.live_schemas import ALERTS
from warehouse.parquet import read_dataset, write_file
from warehouse.quarantine import write_quarantine
from warehouse.schemas import polars_schema
from warehouse.validation import split_valid


def record_alert(home: Path, row: Mapping[str, Any]) -> Path | None:
    """Store one alert row (the columns of AlertRow); returns its file, None if quarantined.

    The first file of the dataset rebuilds the catalog, so the `alerts` view appears at once.
    """
    first = not layout.data_files(layout.dataset_dir(home, ALERTS))
    name = f"alert-{time.time_ns()}-{secrets.token_hex(4)}"
    frame = pl.DataFrame([dict(row)], schema=polars_schema(ALERTS), orient="row")
    valid, rejected = split_valid(frame, ALERTS, f"alerts {name}")
    if rejected.height:
        write_quarantine(home, rejected, ALERTS, f"alerts {name}")
        return None
    day = valid["at"].dt.date()[0].isoformat()
    folder = layout.partition_dir(home, ALERTS, {"day": day})
    path = write_file(home, folder, f"{name}.parquet", valid)
    if first:
        refresh_catalog(home)
    return path


def read_alerts(home: Path) -> pl.DataFrame:
    """Every recorded alert, oldest first (empty, with the columns, before the first)."""
    frame = read_dataset(home, ALERTS)
    if frame.is_empty():
        return pl.DataFrame(schema=polars_schema(ALERTS))
    return frame.select(list(polars_schema(ALERTS))).sort("at")
