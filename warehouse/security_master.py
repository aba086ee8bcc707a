"""The security master's history: one row per version of a contract, keyed by conId.

A contract is its conId, but its symbol, local symbol, exchange or expiry can change (renames,
listings moving, roll conventions). Keeping every version with its validity window lets a query
ask what a conId was called on any day; `valid_to` null marks the version in force.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from warehouse.columns import LINEAGE
from warehouse.schemas import polars_schema

TIMESTAMPS = ("valid_from", "valid_to", "first_seen", "last_seen")
_UTC = pl.Datetime("us", "UTC")


def merge_versions(
    existing: pl.DataFrame, observed: pl.DataFrame, seen_at: datetime
) -> pl.DataFrame:
    """Fold one observation of contracts (one row per conId, no timestamps) into the history.

    Unchanged attributes bump `last_seen`; changed ones close the current version at `seen_at`
    and open a new one. A second, different observation at the same `seen_at` replaces the version
    the first one opened rather than leaving a zero-length version. Contracts not observed stay
    as they are. Pure and idempotent; the result is sorted by (con_id, valid_from).
    """
    if seen_at.tzinfo is None:
        raise ValueError("seen_at must be timezone-aware (UTC)")
    duplicated = observed.filter(pl.col("con_id").is_duplicated()).get_column("con_id").unique()
    if len(duplicated):
        raise ValueError(f"observed has several rows for con_id {sorted(duplicated.to_list())}")
    seen = pl.lit(seen_at).cast(_UTC)
    observed = observed.drop(TIMESTAMPS, strict=False).with_columns(pl.col("con_id").cast(pl.Int64))
    tracked = [c for c in observed.columns if c not in (*LINEAGE, *TIMESTAMPS, "con_id")]
    if existing.is_empty():
        existing = pl.DataFrame(schema={**observed.schema, **dict.fromkeys(TIMESTAMPS, _UTC)})
    existing = existing.with_columns(pl.col(*TIMESTAMPS).cast(_UTC))
    current = existing.filter(pl.col("valid_to").is_null())
    touched = observed.get_column("con_id").implode()
    if current.filter(pl.col("con_id").is_in(touched) & (pl.col("valid_from") > seen)).height:
        raise ValueError("seen_at is earlier than the current version of an observed contract")

    first_seen = existing.group_by("con_id").agg(pl.col("first_seen").min().alias("_first"))
    paired = observed.join(
        current.select("con_id", "valid_from", *(pl.col(c).alias(f"_{c}") for c in tracked)),
        on="con_id",
        how="left",
    ).join(first_seen, on="con_id", how="left")
    has_current = pl.col("valid_from").is_not_null()
    same = pl.all_horizontal(
        pl.lit(True), *(pl.col(c).eq_missing(pl.col(f"_{c}")) for c in tracked)
    )
    paired = paired.with_columns(_same=has_current & same, _changed=has_current & ~same)

    unchanged = paired.filter("_same").get_column("con_id")
    changed = paired.filter("_changed").get_column("con_id")
    # Lineage and last_seen come from the new observation; the version itself is unchanged.
    lineage = [c for c in LINEAGE if c in observed.columns]
    bumped = (
        current.filter(pl.col("con_id").is_in(unchanged.implode()))
        .drop(lineage, strict=False)
        .join(observed.select("con_id", *lineage), "con_id")
        .with_columns(last_seen=pl.max_horizontal("last_seen", seen))
    )
    # A version opened at this very instant is replaced (it is not in `kept`), not closed.
    closed = current.filter(
        pl.col("con_id").is_in(changed.implode()) & (pl.col("valid_from") < seen)
    ).with_columns(valid_to=seen)
    opened = paired.filter(~pl.col("_same")).select(
        *observed.columns,
        valid_from=seen,
        valid_to=pl.lit(None, _UTC),
        first_seen=pl.coalesce("_first", seen),
        last_seen=seen,
    )
    kept = existing.filter(pl.col("valid_to").is_not_null() | ~pl.col("con_id").is_in(touched))

    merged = pl.concat([kept, bumped, closed, opened], how="diagonal_relaxed")
    stored = [c for c in polars_schema("security_master") if c in merged.columns]
    order = stored + [c for c in merged.columns if c not in stored]
    return merged.select(order).sort("con_id", "valid_from")
