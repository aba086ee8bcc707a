"""The backfill of one bar series: ledger gaps -> planned requests -> paced IB calls -> bars.

Shared by the `bars` asset, the sensor's estimates and `ibw backfill`; no Dagster here, so the
command line starts fast. For each series: expected sessions (ibkr.sessions) bounded by the head
timestamp, the expiry and IB's availability; gaps from the coverage ledger; the fewest requests
(ibkr.planner); each request sent only when the shared pacer allows it. Bars are buffered per
session until every request covering the session has answered, then validated, written (the
year file replaced atomically) and only then recorded in the ledger, so a `kill -9` at any
moment costs at most a refetch and never leaves the ledger claiming bars the lake lacks. One
process writes a series at a time (a lock per series); others skip it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from ib_async import BarData, Contract

from ibkr import errors
from ibkr.client import IBClient
from ibkr.connection import ConnectionSettings
from ibkr.durations import SMALL_BAR_MAX_AGE, DurationTable, is_small_bar, refusal_halves
from ibkr.pacer import PacingBudget, RequestKey
from ibkr.pacing_log import SharedPacer
from ibkr.planner import Plan, PlannedRequest, Series, Session, plan
from ibkr.sessions import Hours, expected_sessions, hours_for
from ibkr.universe import BarSpec
from warehouse import bars as bar_store
from warehouse import heads, ledger
from warehouse.locks import try_lock
from warehouse.parquet import read_dataset
from warehouse.quarantine import write_quarantine
from warehouse.schemas import LINEAGE, polars_schema
from warehouse.validation import split_valid

FLUSH_ROWS = 250_000  # buffered bars before a write (a year of full-hours 1-min bars)
FLUSH_REQUESTS = 20  # ... or this many answered requests, whichever comes first
VIOLATION_RETRIES = 2  # a 162 pacing violation: wait out the window, then try again
_UTC = pl.Datetime("us", "UTC")
BAR_COLUMNS = [c for c in polars_schema(bar_store.DATASET) if c not in LINEAGE]
PERMANENT = (errors.NoPermission, errors.ContractNotFound, errors.ExpiredContract)


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
    def hours(self) -> Hours:
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
        """The closed sessions this series should hold, oldest first."""
        today = now.date()
        first = self.spec.first_day(today)
        if is_small_bar(self.spec.bar_size):
            first = max(first, (now - SMALL_BAR_MAX_AGE).date() + timedelta(days=1))
        last = min(today, self.expiry) if self.expiry else today
        sessions = expected_sessions(self.hours, self.spec.use_rth, first, last)
        after = head.timestamp() if head else float("-inf")
        return [s for s in sessions if s.close <= now and s.close.timestamp() > after]


class NoSecurityMaster(errors.IBWError):
    default_cause = "the warehouse has no security master yet"
    default_fix = "run `ibw demo` or materialize the contracts asset in Dagster first"


def targets(home: Path, specs: Iterable[BarSpec], symbols: Sequence[str] = ()) -> list[Target]:
    """Every (contract, spec) pair the universe asks for, from the current security master;
    `symbols` keeps only those contracts (symbol or local symbol)."""
    master = read_dataset(home, "security_master")
    if master.is_empty():
        raise NoSecurityMaster()
    wanted = {s.upper() for s in symbols}
    found = []
    rows = master.sort("con_id").iter_rows(named=True)
    contracts = [r for r in rows if r.get("valid_to") is None]
    if wanted:
        contracts = [r for r in contracts if {r["symbol"], r["local_symbol"]} & wanted]
    for spec in specs:
        for row in contracts:
            if spec.applies_to(row["sec_type"], row["symbol"]):
                found.append(
                    Target(
                        row["con_id"], row["local_symbol"] or row["symbol"], row["sec_type"],
                        row["exchange"], row["primary_exchange"] or "", row["currency"],
                        row["expiry"], spec,
                    )
                )  # fmt: skip
    return found


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
    missing = ledger.gaps([s.day for s in sessions], ledger.read_series(home, target.key), now)
    if not missing:
        return Plan((), {}), sessions
    return plan(
        target.series, missing, sessions, table=table, now=now, expiry=target.expiry
    ), sessions


def estimate(target: Target, home: Path, now: datetime, table: DurationTable) -> Estimate:
    """The series' gaps and their pacing cost from the ledger and the cached head timestamp.

    Only bars of 30 s or less are planned: larger ones cost no hard budget, and planning a
    20-year daily series for nothing would be most of a sensor tick."""
    head = heads.read_head(home, target.con_id, target.what_to_show, target.spec.use_rth)
    sessions = target.expected(now, head)
    missing = ledger.gaps([s.day for s in sessions], ledger.read_series(home, target.key), now)
    if not missing:
        return Estimate(0, 0)
    weight = int(head is None)
    if is_small_bar(target.spec.bar_size):
        planned = plan(target.series, missing, sessions, table=table, now=now, expiry=target.expiry)
        weight += sum(r.pacing_weight for r in planned.requests)
    return Estimate(len(missing), weight)


@contextmanager
def connected(
    settings: ConnectionSettings, home: Path, key: str, request_timeout: float = 60.0
) -> Iterator[Backfill]:
    """A backfill on its own IB connection, paced with every other process on the same login
    (the login is named by its accounts, never by a secret)."""
    client = IBClient.open(settings, key, request_timeout)
    try:
        login = ",".join(sorted(client.ib.managedAccounts())) or "default"
        pacer = SharedPacer.for_login(
            home, settings.host, settings.port, login, budget=PacingBudget.from_env()
        )
        with pacer:
            source = f"ib://{settings.host}:{settings.port}"
            yield Backfill(client, pacer, home, source, table=load_table(home))
    finally:
        client.close()


def _table_path(home: Path) -> Path:
    return home / "pacing" / "durations.json"


def load_table(home: Path) -> DurationTable:
    """The duration table as IB's refusals left it (the default until IB refuses a span)."""
    path = _table_path(home)
    if not path.is_file():
        return DurationTable.default()
    return DurationTable.from_strings(json.loads(path.read_text()))


def save_table(home: Path, table: DurationTable) -> None:
    """Remember a halved span for every later run (written whole, then renamed into place)."""
    path = _table_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(table.as_strings(), indent=1))
    os.replace(temp, path)


@dataclass
class SeriesReport:
    """What one series' backfill did: for the progress line, Dagster metadata and summaries."""

    target: Target
    requests: int = 0
    bars: int = 0
    complete: int = 0
    empty: int = 0
    failed: int = 0
    quarantined: int = 0
    gaps_left: int = 0
    skipped: str = ""  # why nothing was done (another process holds the series)
    errors: list[str] = field(default_factory=list)


@dataclass
class Backfill:
    """One process's backfill context: IB client, shared pacer, warehouse and duration table."""

    client: IBClient
    pacer: SharedPacer
    home: Path
    source: str
    table: DurationTable = field(default_factory=DurationTable.default)
    on_request: Callable[[Target, PlannedRequest], None] = lambda target, request: None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def now(self) -> datetime:
        return self.client.run(self.client.now()).astimezone(UTC)

    # ------------------------------------------------------------------ planning
    def head(self, target: Target, now: datetime) -> datetime | None:
        """IB's earliest data for the series' contract, asked once and kept in the warehouse."""
        what, rth = target.what_to_show, target.spec.use_rth
        known = heads.read_head(self.home, target.con_id, what, rth)
        if known is not None:
            return known
        key = RequestKey.head_timestamp(target.con_id, target.exchange, what, rth)
        try:
            with self.pacer.slot(key):
                found = self.client.run(self.client.head_timestamp(target.contract(), what, rth))
        except errors.NoData:
            return None
        head = found.astimezone(UTC) if isinstance(found, datetime) else None
        if head is not None:
            heads.write_head(self.home, target.con_id, what, rth, head, now)
        return head

    def plan(self, target: Target, now: datetime) -> tuple[Plan, list[Session]]:
        """The series' plan now, and its expected sessions."""
        return plan_series(target, self.home, now, self.table, self.head(target, now))

    # ------------------------------------------------------------------ running
    def run(self, target: Target, now: datetime | None = None) -> SeriesReport:
        """Fill every gap of one series that IB can serve now."""
        report = SeriesReport(target)
        with try_lock(self.home, f"bars {target.key}") as held:
            if not held:
                report.skipped = "another process is filling this series"
                return report
            self._fill(target, now or self.now(), report)
        return report

    def _fill(self, target: Target, now: datetime, report: SeriesReport) -> None:
        held = ledger.read_series(self.home, target.key)
        if not ledger.gaps([s.day for s in target.expected(now, None)], held, now):
            return  # nothing to do, not even a head timestamp to ask for
        try:
            while self._fill_once(target, now, report):
                pass  # IB refused a span: the table halved, plan again
        except PERMANENT as exc:  # the head timestamp: IB refuses the contract itself
            days = [s.day for s in target.expected(now, None)]
            self._fail(target, days, exc, now, report, permanent=True)
        held = ledger.read_series(self.home, target.key)
        head = heads.read_head(self.home, target.con_id, target.what_to_show, target.spec.use_rth)
        expected = [s.day for s in target.expected(now, head)]
        retrying_later = now + ledger.LAST_RETRY  # a transient failure is still a gap
        report.gaps_left = len(ledger.gaps(expected, held, retrying_later))

    def _fill_once(self, target: Target, now: datetime, report: SeriesReport) -> bool:
        """Send the series' plan; True when IB refused a span and the plan must be redone."""
        planned, sessions = self.plan(target, now)
        by_reason: dict[str, list[date]] = defaultdict(list)
        for day, reason in planned.unavailable.items():
            by_reason[reason.value].append(day)
        for reason, days in by_reason.items():
            ledger.record(self.home, target.key, days, "failed", now, text=reason, permanent=True)
            report.failed += len(days)
        batch = _Batch(target, sessions, planned.requests)
        try:
            for request in planned.requests:
                try:
                    received = self._send(target, request)
                except errors.NoData:
                    received = []
                except errors.IBWError as exc:
                    if self._halve_for(exc, target):
                        return True
                    permanent = isinstance(exc, PERMANENT)
                    days = batch.fail(None if permanent else request)
                    self._fail(target, days, exc, now, report, permanent=permanent)
                    if permanent:
                        return False
                    if isinstance(exc, errors.GatewayUnavailable):
                        raise
                    continue
                report.requests += 1
                batch.add(request, received)
                if batch.rows >= FLUSH_ROWS or batch.answered >= FLUSH_REQUESTS:
                    self._flush(batch, now, report)
        finally:
            self._flush(batch, now, report)  # whatever is finished is kept, even on the way out
        return False

    def _halve_for(self, exc: errors.IBWError, target: Target) -> bool:
        """Halve the table's span when IB asked for less (and it can still halve); remember it."""
        size = target.spec.bar_size
        shorter = self.table.halve(size)
        if not _asks_for_less(exc, target) or shorter.span(size) == self.table.span(size):
            return False
        self.table = shorter
        save_table(self.home, shorter)
        return True

    def _fail(
        self,
        target: Target,
        days: list[date],
        exc: errors.IBWError,
        now: datetime,
        report: SeriesReport,
        *,
        permanent: bool,
    ) -> None:
        ledger.record(self.home, target.key, days, "failed", now, code=exc.code,
                      text=exc.sentence, permanent=permanent)  # fmt: skip
        report.failed += len(days)
        report.errors.append(exc.sentence)

    def _send(self, target: Target, request: PlannedRequest) -> list[BarData]:
        key = RequestKey(
            target.con_id, target.exchange, request.what_to_show, request.bar_size,
            request.end_date_time, request.duration, request.use_rth,
        )  # fmt: skip
        for attempt in range(VIOLATION_RETRIES + 1):
            with self.pacer.slot(key):
                self.on_request(target, request)
                try:
                    return self.client.run(
                        self.client.historical_bars(
                            target.contract(), request.end_date_time, request.duration,
                            request.bar_size, request.what_to_show, request.use_rth,
                            f"{target.name} ending {request.end_date_time or 'now'}",
                        )
                    )  # fmt: skip
                except errors.PacingViolation:
                    if attempt == VIOLATION_RETRIES:
                        raise
                    self.pacer.record_violation()  # the next try waits for the window
        raise AssertionError("unreachable")

    def _flush(self, batch: _Batch, now: datetime, report: SeriesReport) -> None:
        """Write the finished sessions' bars, then record them in the ledger."""
        days, frame = batch.take_finished()
        if not days:
            return
        target = batch.target
        origin = f"bars {target.key.con_id} {target.key.bar_size} {target.what_to_show} " + (
            f"{'rth' if target.spec.use_rth else 'all'} {days[0]}..{days[-1]}"
        )
        rows = frame.with_columns(
            request_id=pl.lit(self.request_id),
            fetched_at=pl.lit(now).dt.cast_time_unit("us"),
            source=pl.lit(self.source),
        )
        valid, rejected = split_valid(rows, bar_store.DATASET, origin)
        if rejected.height:
            write_quarantine(self.home, rejected, bar_store.DATASET, origin)
        bar_store.write_sessions(self.home, target.key, valid, days)
        with_bars = set(valid["session_date"].to_list())
        full = [d for d in days if d in with_bars]
        empty = [d for d in days if d not in with_bars]
        if full:
            ledger.record(self.home, target.key, full, "complete", now)
        if empty:
            ledger.record(self.home, target.key, empty, "empty", now)
        report.bars += valid.height
        report.complete += len(full)
        report.empty += len(empty)
        report.quarantined += rejected.height


def _asks_for_less(exc: errors.IBWError, target: Target) -> bool:
    """IB refused the span (162 'invalid step'/'Time length exceed max'), or a large-bar answer
    timed out under IB's soft throttle: the table's span for this bar size halves."""
    if refusal_halves(exc.code or 0, exc.ib_text):
        return True
    return isinstance(exc, errors.RequestTimeout) and not is_small_bar(target.spec.bar_size)


class _Batch:
    """Bars received, per session, until every request covering the session has answered.

    Answers are kept as they came and placed in their sessions once per flush (one as-of join
    over all of them, not one per answer)."""

    def __init__(
        self, target: Target, sessions: Sequence[Session], requests: Sequence[PlannedRequest]
    ) -> None:
        self.target = target
        self.sessions = pl.DataFrame(
            {
                "day": [s.day for s in sessions],
                "session_open": [s.open for s in sessions],
                "session_close": [s.close for s in sessions],
            },
            schema={"day": pl.Date, "session_open": _UTC, "session_close": _UTC},
        )
        self.waiting: dict[date, int] = defaultdict(int)
        for request in requests:
            for day in request.covers:
                self.waiting[day] += 1
        self.received: list[pl.DataFrame] = []  # answers not yet placed in their sessions
        self.placed = self.locate([])  # bars of sessions still waiting for a request
        self.finished: list[date] = []
        self.rows = 0
        self.answered = 0

    def add(self, request: PlannedRequest, received: Sequence[BarData]) -> None:
        frame = _frame_of(received, self.target)
        self.received.append(frame)
        self.rows += frame.height
        self.answered += 1
        for day in request.covers:
            if self.waiting.get(day, 0) > 0:
                self.waiting[day] -= 1
                if self.waiting[day] == 0:
                    self.finished.append(day)

    def fail(self, request: PlannedRequest | None) -> list[date]:
        """A request failed (None: the whole series did): the sessions it leaves unfinished
        never finish in this run, and their bars received so far are dropped."""
        covers = request.covers if request else list(self.waiting)
        days = sorted(d for d in covers if self.waiting.get(d, 0) > 0)
        for day in days:
            del self.waiting[day]
        return days

    def take_finished(self) -> tuple[list[date], pl.DataFrame]:
        """The finished sessions and their bars; they leave the batch. Bars of sessions that
        are not waiting (held ones a request passed over, failed ones) are dropped; bars in no
        session at all go along, so validation quarantines them."""
        days = sorted(set(self.finished))
        everything = pl.concat([self.placed, self.locate(self.received)])
        session = pl.col("session_date")
        done = everything.filter(session.is_in(days) | session.is_null())
        still = [d for d, n in self.waiting.items() if n > 0]
        self.placed = everything.filter(session.is_in(still))
        self.received, self.finished, self.answered = [], [], 0
        self.rows = self.placed.height
        for day in days:
            self.waiting.pop(day, None)
        return days, done

    def locate(self, frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
        """Bars with `ts` (their start; a daily bar starts at its session's open) and the
        `session_date` they belong to, null when they are in no expected session. Bars before
        the first session or after the last are not wanted: a `N Y` span or a lone sliver can
        reach past the series' range."""
        frame = pl.concat(frames) if frames else _frame_of([], self.target)
        if frame.is_empty() or self.sessions.is_empty():
            nowhere = {"session_date": pl.lit(None, pl.Date), "ts": pl.lit(None, _UTC)}
            return frame.with_columns(**nowhere).select(BAR_COLUMNS)
        first, last = self.sessions.row(0, named=True), self.sessions.row(-1, named=True)
        sessions = self.sessions.lazy()
        intraday = frame.get_column("epoch").null_count() == 0
        if intraday:  # the session whose hours contain the bar's start
            located = (
                frame.lazy()
                .drop("day")
                .with_columns(ts=pl.from_epoch("epoch", "s").dt.replace_time_zone("UTC"))
                .sort("ts")
                .join_asof(sessions, left_on="ts", right_on="session_open", strategy="backward")
            )
            inside = pl.col("ts") < pl.col("session_close")
            wanted = pl.col("ts").is_between(
                first["session_open"], last["session_close"], closed="left"
            )
        else:  # a daily bar is dated by its session
            located = (
                frame.lazy()
                .join(sessions, on="day", how="left", maintain_order="left")
                .with_columns(ts=pl.col("session_open"))
            )
            inside = pl.col("session_open").is_not_null()
            wanted = pl.col("day").is_between(first["day"], last["day"])
        return (
            located.filter(wanted)
            .with_columns(session_date=pl.when(inside).then(pl.col("day")))
            .select(BAR_COLUMNS)
            .collect()
        )


def _frame_of(received: Sequence[BarData], target: Target) -> pl.DataFrame:
    """Bars as IB sent them, dated by `epoch` (intraday) or `day` (daily bars), with the
    dataset's columns otherwise (IB's -1 for 'no volume' becomes null)."""
    intraday = bool(received) and isinstance(received[0].date, datetime)
    n = len(received)

    def column(values: list, dtype: pl.DataType) -> pl.Series:
        return pl.Series(values, dtype=dtype)

    return pl.DataFrame(
        {
            "epoch": column([int(b.date.timestamp()) for b in received] if intraday else [None] * n,
                            pl.Int64()),
            "day": column([None] * n if intraday else [b.date for b in received], pl.Date()),
            "open": column([b.open for b in received], pl.Float64()),
            "high": column([b.high for b in received], pl.Float64()),
            "low": column([b.low for b in received], pl.Float64()),
            "close": column([b.close for b in received], pl.Float64()),
            "volume": column([float(b.volume) for b in received], pl.Float64()).replace(-1.0, None),
            "wap": column([float(b.average) for b in received], pl.Float64()).replace(-1.0, None),
            "bar_count": column([b.barCount for b in received], pl.Int64()).replace(-1, None),
        }
    ).with_columns(
        con_id=pl.lit(target.con_id, pl.Int64),
        bar_size=pl.lit(target.spec.bar_size, pl.String),
        what_to_show=pl.lit(target.what_to_show, pl.String),
        use_rth=pl.lit(target.spec.use_rth, pl.Boolean),
    )  # fmt: skip
