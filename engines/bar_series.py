"""A bar series of one contract: what the universe asks for, what the ledger lacks, and what
fetching it would cost.

Owns `Target` (a contract and a bar spec: the IB request's contract, the ledger's key, the
planner's series, the expected sessions), `targets` (every pair the universe asks for, from the
security master) and the plan of a series' gaps. No IB calls and no Dagster: the sensor prices
series with it, the backfill plans with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from ib_async import Contract

from engines.option_quotes import with_option_types
from ibfacts.venues import Venue
from ibkr import errors
from ibkr.durations import SMALL_BAR_MAX_AGE, DurationTable, is_small_bar
from ibkr.planner import Plan, Series, Session, plan
from ibkr.sessions import expected_sessions, hours_for
from ibkr.universe import BarSpec
from warehouse import heads, integrity, ledger
from warehouse.parquet import read_dataset


@dataclass(frozen=True)
class Span:
    """The stretch of time a series is asked for (`--start/--end`), read in each contract's
    exchange zone: a date takes its sessions whole (from, or through, that day), a time keeps
    the sessions closing after the start and by the end. None: the history back from now."""

    start: date | datetime | None = None  # naive: a wall time of the exchange
    end: date | datetime | None = None

    def start_at(self, zone: ZoneInfo) -> datetime | None:
        return None if self.start is None else _local(self.start, zone)

    def end_at(self, zone: ZoneInfo) -> datetime | None:
        if self.end is None:
            return None
        if isinstance(self.end, datetime):
            return _local(self.end, zone)
        return _local(self.end + timedelta(days=1), zone)  # through the end of that day


def _local(moment: date | datetime, zone: ZoneInfo) -> datetime:
    wall = moment if isinstance(moment, datetime) else datetime.combine(moment, time())
    return wall.replace(tzinfo=zone)


@dataclass(frozen=True)
class Target:
    """One bar series of one contract: what to ask IB and where the answer goes."""

    con_id: int
    symbol: str  # for people: local symbol, e.g. ESZ4 or AAPL
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    expiry: date | None
    spec: BarSpec
    span: Span = Span()

    @property
    def what_to_show(self) -> str:
        return self.spec.what_for(self.sec_type)

    @property
    def series(self) -> Series:
        return Series(
            self.con_id, self.sec_type, self.exchange, self.spec.bar_size, self.what_to_show,
            self.spec.use_rth,
        )  # fmt: skip

    @property
    def key(self) -> ledger.Series:
        return ledger.Series(self.con_id, self.spec.bar_size, self.what_to_show, self.spec.use_rth)

    @property
    def hours(self) -> Venue:
        return hours_for(self.sec_type, self.exchange, self.primary_exchange)

    @property
    def name(self) -> str:
        return f"{self.symbol} {self.spec.bar_size} {self.what_to_show}" + (
            "" if self.spec.use_rth else " all hours"
        )

    def contract(self) -> Contract:
        return Contract(
            conId=self.con_id, secType=self.sec_type, exchange=self.exchange,
            currency=self.currency, includeExpired=self.sec_type == "FUT",
        )  # fmt: skip

    def expected(self, now: datetime, head: datetime | None) -> list[Session]:
        """The closed sessions this series should hold, oldest first: those of the span, or
        the history back from the span's end (default now); a history in days counts sessions,
        so `5d` is the last five sessions, as a trader means it, not five calendar days."""
        zone = ZoneInfo(self.hours.tz)
        end = self.span.end_at(zone)
        until = now if end is None else min(now, end)
        last = (until + timedelta(days=1)).date()  # generous: the closes are compared below
        if self.expiry:
            last = min(last, self.expiry)
        start = self.span.start_at(zone)
        if start is not None:
            first = start.date() - timedelta(days=1)
        elif self.spec.in_sessions:  # enough calendar days to hold the sessions asked for
            first = last - timedelta(days=2 * self.spec.history_days + 10)
        else:
            first = self.spec.first_day(until.date())
        closed = [
            s
            for s in expected_sessions(self.hours, self.spec.use_rth, first, last)
            if s.close <= until and (start is None or s.close > start)
        ]
        if start is None and self.spec.in_sessions:
            closed = closed[-self.spec.history_days :]
        if is_small_bar(self.spec.bar_size):  # IB keeps no older small bars
            oldest = (now - SMALL_BAR_MAX_AGE).date() + timedelta(days=1)
            closed = [s for s in closed if s.day >= oldest]
        after = head.timestamp() if head else float("-inf")
        return [s for s in closed if s.close.timestamp() > after]


class NoSecurityMaster(errors.IBWError):
    default_cause = "the warehouse has no security master yet"
    default_fix = "run `ibw universe` first to resolve the universe file into it"


def targets(
    home: Path, specs: Iterable[BarSpec], symbols: Sequence[str] = (), span: Span = Span()
) -> list[Target]:
    """Every (contract, spec) pair the universe asks for, from the current security master;
    `symbols` keeps only those contracts (symbol or local symbol); `span` bounds their time."""
    master = read_dataset(home, "security_master")
    if master.is_empty():
        raise NoSecurityMaster()
    wanted = {s.upper() for s in symbols}
    found = []
    rows = master.sort("con_id").iter_rows(named=True)
    contracts = [r for r in rows if r.get("valid_to") is None]
    if any("OPT" in spec.sec_types for spec in specs):
        contracts += live_options(home)
    if wanted:
        contracts = [r for r in contracts if {r["symbol"], r["local_symbol"]} & wanted]
    for spec in specs:
        for row in contracts:
            if spec.applies_to(row["sec_type"], row["symbol"]):
                found.append(
                    Target(
                        row["con_id"], row["local_symbol"] or row["symbol"], row["sec_type"],
                        row["exchange"], row["primary_exchange"] or "", row["currency"],
                        row["expiry"], spec, span,
                    )
                )  # fmt: skip
    return found


def live_options(home: Path) -> list[dict]:
    """The options of the newest stored chain (those inside the universe's option windows), as
    security-master rows: an option's bar series is kept while it lives (IB keeps no bars of
    expired options), and one that left the window or expired is no longer a target."""
    chain = with_option_types(read_dataset(home, "option_chains"))
    if chain.is_empty():
        return []
    newest = chain.filter(pl.col("snapshot_date") == pl.col("snapshot_date").max())
    as_master = newest.sort("con_id").select(
        "con_id", "local_symbol", "exchange", "expiry", "sec_type", symbol="underlying_symbol",
        primary_exchange=pl.lit(""), currency=pl.lit("USD"),
    )  # fmt: skip
    return as_master.to_dicts()


def known_head(home: Path, target: Target) -> datetime | None:
    """The series' head timestamp if IB was asked for it before (never asks: it costs budget)."""
    return heads.read_head(home, target.con_id, target.what_to_show, target.spec.use_rth)


@dataclass(frozen=True)
class Estimate:
    """What a series lacks now and what fetching it costs, without asking IB (for the sensor)."""

    missing: int  # sessions the ledger lacks and IB may be asked for now
    weight: int  # small-bar pacing budget, the head-timestamp request included if not known yet


def plan_series(
    target: Target, home: Path, now: datetime, table: DurationTable, head: datetime | None
) -> tuple[Plan, list[Session]]:
    """The fewest requests for what the ledger lacks of the series now, and its sessions."""
    sessions = target.expected(now, head)
    held = integrity.lake_backed(home, target.key, ledger.read_series(home, target.key))
    missing = ledger.gaps([s.day for s in sessions], held, now)
    if not missing:
        return Plan((), {}), sessions
    return plan(
        target.series, missing, sessions, table=table, now=now, expiry=target.expiry
    ), sessions


@dataclass(frozen=True)
class Holdings:
    """Every series' ledger and every head timestamp, read in one scan each: a sensor tick
    prices every series, and a file read per series would be most of its time."""

    ledgers: dict[ledger.Series, pl.DataFrame]
    heads: dict[tuple[int, str, bool], datetime]

    @classmethod
    def read(cls, home: Path) -> Holdings:
        """Each ledger without the sessions lost with their year's file (a listing per series)."""
        ledgers = {
            key: integrity.lake_backed(home, key, held)
            for key, held in ledger.read_all(home).items()
        }
        return cls(ledgers, heads.read_all(home))

    def ledger(self, key: ledger.Series) -> pl.DataFrame:
        return self.ledgers.get(key, EMPTY_LEDGER)

    def head(self, target: Target) -> datetime | None:
        return self.heads.get((target.con_id, target.what_to_show, target.spec.use_rth))


EMPTY_LEDGER = pl.DataFrame(schema=ledger.LEDGER_SCHEMA)


def estimate(target: Target, held: Holdings, now: datetime, table: DurationTable) -> Estimate:
    """The series' gaps and their pacing cost from the ledger and the cached head timestamp.

    Only bars of 30 s or less are planned: larger ones cost no hard budget, and planning a
    20-year daily series for nothing would be most of a sensor tick."""
    head = held.head(target)
    sessions = target.expected(now, head)
    missing = ledger.gaps([s.day for s in sessions], held.ledger(target.key), now)
    if not missing:
        return Estimate(0, 0)
    weight = int(head is None)
    if is_small_bar(target.spec.bar_size):
        planned = plan(target.series, missing, sessions, table=table, now=now, expiry=target.expiry)
        weight += sum(r.pacing_weight for r in planned.requests)
    return Estimate(len(missing), weight)
