"""The universe resolved into the security master: every entry asked of IB, the contracts found
validated, folded into their version history, written, the rejected rows quarantined and the
DuckDB catalog refreshed.

Shared by the `contracts` asset and `ibw universe`, so a user pointed at a real gateway can build
the security master without starting Dagster. No Dagster here.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
from ib_async import ContractDetails

from ibkr.client import IBClient
from ibkr.contracts import Resolution, resolve
from ibkr.universe import Universe
from warehouse.catalog import refresh_catalog
from warehouse.columns import LINEAGE
from warehouse.parquet import read_dataset, write_partition
from warehouse.quarantine import write_quarantine
from warehouse.schemas import polars_schema
from warehouse.security_master import merge_versions
from warehouse.validation import split_valid

DATASET = "security_master"
ORIGIN = "contracts"  # a rerun replaces the quarantine rows of the previous one
# Times that move on every run although the contract did not change: left out of the content hash
_RUN_TIMES = ("last_seen",)


@dataclass
class UniverseReport:
    """What one resolution of the universe did: for the asset's metadata and the CLI summary."""

    entries: int
    failures: list[Resolution] = field(default_factory=list)
    by_sec_type: dict[str, int] = field(default_factory=dict)
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    rows: int = 0  # versions in the security master after the run
    quarantined: int = 0
    requests: int = 0
    gateway_time: datetime | None = None
    content_hash: str = ""  # of the current versions; changes only when a contract does

    @property
    def contracts(self) -> int:
        return self.new + self.changed + self.unchanged


def build_security_master(
    client: IBClient,
    universe: Universe,
    home: Path,
    request_id: str,
    source: str,
    on_entry: Callable[[int, Resolution], None] = lambda index, resolution: None,
) -> UniverseReport:
    """Resolve every entry of `universe` through `client` and store the result under `home`;
    `on_entry` hears each entry as it resolves (its 1-based index and what it found). An entry
    that does not resolve is reported, never fatal: the rest of the universe still lands."""

    async def resolve_all() -> tuple[datetime, list[Resolution]]:
        now = await client.now()
        found = []
        for index, entry in enumerate(universe.entries, 1):
            found.append(await resolve(client, entry, now))
            on_entry(index, found[-1])
        return now, found

    now, resolutions = client.run(resolve_all())
    seen_at = datetime.now(UTC)
    observed = observations(resolutions, request_id, seen_at, source)
    valid, rejected = split_valid(observed, DATASET, origin=ORIGIN)
    existing = read_dataset(home, DATASET)
    master = merge_versions(existing, valid, seen_at)
    write_partition(home, DATASET, master)
    write_quarantine(home, rejected, DATASET, origin=ORIGIN)
    refresh_catalog(home)

    before = set(_current(existing).get_column("con_id").to_list()) if existing.height else set()
    opened = set(
        _current(master).filter(pl.col("valid_from") == seen_at).get_column("con_id").to_list()
    )
    seen = set(valid.get_column("con_id").to_list()) if valid.height else set()
    return UniverseReport(
        entries=len(universe.entries),
        failures=[r for r in resolutions if r.error is not None],
        by_sec_type=dict(sorted(Counter(valid["sec_type"].to_list()).items())),
        new=len(opened - before),
        changed=len(opened & before),
        unchanged=len(seen - opened),
        rows=master.height,
        quarantined=rejected.height,
        requests=client.requests,
        gateway_time=now,
        content_hash=content_hash(master),
    )


def content_hash(master: pl.DataFrame) -> str:
    """A digest of the current versions without the times every run moves (when it was seen,
    fetched, by which request): equal digests mean nothing any contract holds has changed."""
    kept = [c for c in master.columns if c not in (*LINEAGE, *_RUN_TIMES)]
    rows = _current(master).select(kept).sort("con_id")
    return hashlib.sha256(rows.write_csv().encode()).hexdigest()[:16]


def _current(master: pl.DataFrame) -> pl.DataFrame:
    return master.filter(pl.col("valid_to").is_null())


def _expiry(value: str) -> date | None:
    return datetime.strptime(value[:8], "%Y%m%d").date() if len(value) >= 8 else None


def master_row(details: ContractDetails, entry: str) -> dict:
    """A contract's row; a bond, whose details (IB's bond contract data) carry no local symbol,
    no name and no last trade date, is known by its CUSIP, description and maturity."""
    c = details.contract
    bond = c.secType == "BOND"
    return {
        "con_id": c.conId,
        "symbol": c.symbol,
        "local_symbol": c.localSymbol or (details.cusip if bond else ""),
        "sec_type": c.secType,
        "exchange": c.exchange,
        "primary_exchange": c.primaryExchange or None,
        "currency": c.currency,
        "multiplier": c.multiplier or None,
        "expiry": _expiry(c.lastTradeDateOrContractMonth or (details.maturity if bond else "")),
        "trading_class": c.tradingClass,
        "min_tick": details.minTick,
        "time_zone_id": details.timeZoneId,
        "trading_hours": details.tradingHours,
        "liquid_hours": details.liquidHours,
        "long_name": details.longName or (details.descAppend if bond else ""),
        "universe_entry": entry,
    }


def observations(
    resolutions: list[Resolution], request_id: str, fetched_at: datetime, source: str
) -> pl.DataFrame:
    """One row per contract seen this run (the first entry that found it names it)."""
    rows: dict[int, dict] = {}
    for resolution in resolutions:
        for details in resolution.details:
            rows.setdefault(details.contract.conId, master_row(details, resolution.entry.name))
    if not rows:  # no entry resolved: an empty observation, so nothing changes
        return pl.DataFrame(schema=polars_schema(DATASET))
    frame = pl.DataFrame(list(rows.values()), infer_schema_length=None)
    seen = pl.lit(fetched_at).dt.cast_time_unit("us")
    return frame.with_columns(
        request_id=pl.lit(request_id),
        fetched_at=seen,
        source=pl.lit(source),
        # provisional version columns, so rows validate as they will be stored; merge_versions
        # sets the real ones
        valid_from=seen,
        valid_to=pl.lit(None, dtype=pl.Datetime("us", "UTC")),
        first_seen=seen,
        last_seen=seen,
    )
