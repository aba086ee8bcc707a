"""The live order manager's datasets: `live_orders`, `live_fills`, `live_differences`.

The journal (SQLite, owned by the live service) is the record; these are its analyst-facing
copy, one atomic Parquet partition per UTC day (`day=YYYY-MM-DD`) and dataset, rewritten whole
on every export, so a rerun replaces and a `kill -9` leaves the old or the new partition. Rows
that break a model go to the quarantine with their reason instead of the dataset. No IB, no
Dagster: the live package hands in plain rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from warehouse.parquet import write_partition
from warehouse.quarantine import write_quarantine
from warehouse.schemas import Lineage, UtcDatetime
from warehouse.validation import _quarantine_rows, _reason

STATES = ["new", "refused", "sending", "working", "done"]


class LiveOrder(Lineage):
    """One journaled intent with the gateway's latest word on it (quantity/prices as modified)."""

    day: pl.Date
    key: str = pa.Field(str_length={"min_value": 1})
    state: str = pa.Field(isin=STATES)
    account: str
    con_id: pl.Int64 = pa.Field(gt=0)
    action: str = pa.Field(isin=["BUY", "SELL"])
    quantity: pl.Float64 = pa.Field(gt=0)
    order_type: str
    limit_price: pl.Float64 = pa.Field(nullable=True)
    aux_price: pl.Float64 = pa.Field(nullable=True)
    tif: str
    fa_group: str
    parent_key: str
    order_id: pl.Int64 = pa.Field(nullable=True)
    perm_id: pl.Int64 = pa.Field(nullable=True)
    client_id: pl.Int64 = pa.Field(nullable=True)
    status: str = pa.Field(nullable=True)
    filled: pl.Float64 = pa.Field(nullable=True)
    remaining: pl.Float64 = pa.Field(nullable=True)
    avg_fill_price: pl.Float64 = pa.Field(nullable=True)
    cancel_requested: pl.Boolean
    modification_state: str = pa.Field(nullable=True)
    reason: str = pa.Field(nullable=True)
    intent: str
    created_at: UtcDatetime
    updated_at: UtcDatetime

    class Config:
        unique: ClassVar[list[str]] = ["key"]


class LiveFill(Lineage):
    """One execution; a corrected one stays, with `superseded_by` naming its correction."""

    day: pl.Date
    exec_id: str = pa.Field(str_length={"min_value": 1})
    base_id: str
    key: str = pa.Field(nullable=True)  # null: a fill no journaled order explains
    order_id: pl.Int64 = pa.Field(nullable=True)
    perm_id: pl.Int64 = pa.Field(nullable=True)
    account: str = pa.Field(str_length={"min_value": 1})
    con_id: pl.Int64 = pa.Field(gt=0)
    side: str = pa.Field(isin=["BOT", "SLD"])
    shares: pl.Float64 = pa.Field(gt=0)
    price: pl.Float64
    time: UtcDatetime
    superseded_by: str = pa.Field(nullable=True)
    commission: pl.Float64 = pa.Field(nullable=True, ge=0)
    commission_currency: str = pa.Field(nullable=True)
    realized_pnl: pl.Float64 = pa.Field(nullable=True)

    class Config:
        unique: ClassVar[list[str]] = ["exec_id"]


class LiveDifference(Lineage):
    """A disagreement reconciliation found between the journal and the gateway."""

    day: pl.Date
    kind: str = pa.Field(isin=["unknown_order", "fill_without_intent", "order_missing", "position"])
    subject: str
    key: str = pa.Field(nullable=True)
    account: str = pa.Field(nullable=True)
    con_id: pl.Int64 = pa.Field(nullable=True)
    detail: str
    first_seen: UtcDatetime
    last_seen: UtcDatetime

    class Config:
        unique: ClassVar[list[str]] = ["kind", "subject"]


MODELS: dict[str, type[pa.DataFrameModel]] = {
    "live_orders": LiveOrder,
    "live_fills": LiveFill,
    "live_differences": LiveDifference,
}


def stored_schema(dataset: str) -> dict[str, pl.DataType]:
    """A dataset's polars columns as stored."""
    return {c: col.dtype.type for c, col in MODELS[dataset].to_schema().columns.items()}


def write_live_dataset(
    home: Path, dataset: str, rows: Iterable[Mapping[str, Any]], origin: str
) -> dict[str, int]:
    """Write every day of `rows` (each has `day`) as that day's partition; rows per day.

    Invalid rows go to the quarantine under (dataset, origin-day), replacing the last ones.
    """
    schema = stored_schema(dataset)
    by_day: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_day[str(row["day"])].append(row)
    written = {}
    for day, day_rows in sorted(by_day.items()):
        frame = pl.DataFrame(day_rows, schema=schema, orient="row")
        valid, rejected = _split(dataset, frame, f"{origin} {day}")
        write_quarantine(home, rejected, dataset, f"{origin} {day}")
        write_partition(home, dataset, valid, {"day": day})
        written[day] = valid.height
    return written


def _split(dataset: str, frame: pl.DataFrame, origin: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid rows, quarantine rows with their reasons); a frame-wide failure raises."""
    model = MODELS[dataset]
    try:
        return model.validate(frame, lazy=True), _quarantine_rows(frame, [], {}, dataset, origin)
    except SchemaErrors as err:
        failures = err.failure_cases
    schema = model.to_schema()
    reasons: dict[int, list[str]] = defaultdict(list)
    for case in failures.iter_rows(named=True):
        if case["index"] is None:
            raise ValueError(f"{dataset}: {_reason(schema, case)}")
        reasons[case["index"]].append(_reason(schema, case))
    bad = sorted(reasons)
    valid = frame.with_row_index("_row").filter(~pl.col("_row").is_in(bad)).drop("_row")
    return valid, _quarantine_rows(frame, bad, reasons, dataset, origin)
