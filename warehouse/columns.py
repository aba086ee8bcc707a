"""The column types and lineage every dataset model shares: `UtcDatetime`, the `Lineage` base
model, its column names (`LINEAGE`) and IB's security types (`SEC_TYPES`).

Kept apart from the model modules (`schemas`, `live_schemas`) so each can import them without
importing the other.
"""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

UtcDatetime = Annotated[pl.Datetime, "us", "UTC"]

LINEAGE = ("request_id", "fetched_at", "source")
SEC_TYPES = [
    "STK", "IND", "FUT", "CONTFUT", "CASH", "OPT", "FOP", "BOND", "CFD", "FUND", "CRYPTO", "WAR",
]  # fmt: skip


class Lineage(pa.DataFrameModel):
    """Where each row came from: the request that fetched it, when, and from which source."""

    request_id: str = pa.Field(str_length={"min_value": 1})
    fetched_at: UtcDatetime
    source: str = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True
        coerce = True
