"""The backfill of one bar series: ledger gaps -> planned requests -> paced IB calls -> bars.

Shared by the `bars` asset, `ibw backfill` and the demo; no Dagster here, so the command line
starts fast. For each series (`engines.bar_series`): expected sessions bounded by the head
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
from ib_async import BarData

from engines.bar_batch import SessionBatch
from engines.bar_series import Target, plan_series
from ibkr import errors
from ibkr.client import IBClient
from ibkr.connection import ConnectionSettings
from ibkr.durations import DurationTable, is_small_bar, refusal_halves
from ibkr.pacer import PacingBudget, RequestKey
from ibkr.pacing_log import SharedPacer, pacing_dir
from ibkr.planner import Plan, PlannedRequest, Session
from shared_state.locks import Hold
from warehouse import bars as bar_store
from warehouse import heads, integrity, ledger
from warehouse.quarantine import write_quarantine
from warehouse.validation import split_valid

FLUSH_ROWS = 250_000  # buffered bars before a write (a year of full-hours 1-min bars)
FLUSH_REQUESTS = 20  # ... or this many answered requests, whichever comes first
VIOLATION_RETRIES = 2  # a 162 pacing violation: wait out the window, then try again
PERMANENT = (errors.NoPermission, errors.ContractNotFound, errors.ExpiredContract)


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
    return pacing_dir(home) / "durations.json"


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
    partial: int = 0  # sessions partly answered when the run was cut short: not recorded
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
    on_head: Callable[[Target], None] = lambda target: None  # a head timestamp about to be asked
    # progress hooks (the bars asset's run log): a series' plan made, a year file written
    on_plan: Callable[[Target, Plan], None] = lambda target, plan: None
    on_written: Callable[[Target, dict[Path, int]], None] = lambda target, rows_by_file: None
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
                self.on_head(target)
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
    def run(
        self, target: Target, now: datetime | None = None, report: SeriesReport | None = None
    ) -> SeriesReport:
        """Fill every gap of one series that IB can serve now; `report`, when given, is kept
        up to date as requests are answered, so an interrupted caller can say what was kept."""
        report = report or SeriesReport(target)
        with bar_store.lock_series(self.home, target.key) as held:
            if not held:
                report.skipped = "another process is filling this series"
                return report
            integrity.return_lost_years(self.home, target.key)  # a deleted year is a gap again
            self._fill(target, now or self.now(), report, held)
        return report

    def _fill(self, target: Target, now: datetime, report: SeriesReport, lock: Hold) -> None:
        held = ledger.read_series(self.home, target.key)
        if not ledger.gaps([s.day for s in target.expected(now, None)], held, now):
            return  # nothing to do, not even a head timestamp to ask for
        try:
            while self._fill_once(target, now, report, lock):
                pass  # IB refused a span: the table halved, plan again
        except PERMANENT as exc:  # the head timestamp: IB refuses the contract itself
            days = [s.day for s in target.expected(now, None)]
            self._fail(target, days, exc, now, report, permanent=True)
        held = ledger.read_series(self.home, target.key)
        head = heads.read_head(self.home, target.con_id, target.what_to_show, target.spec.use_rth)
        expected = [s.day for s in target.expected(now, head)]
        retrying_later = now + ledger.LAST_RETRY  # a transient failure is still a gap
        report.gaps_left = len(ledger.gaps(expected, held, retrying_later))

    def _fill_once(self, target: Target, now: datetime, report: SeriesReport, lock: Hold) -> bool:
        """Send the series' plan; True when IB refused a span and the plan must be redone."""
        planned, sessions = self.plan(target, now)
        self.on_plan(target, planned)
        by_reason: dict[str, list[date]] = defaultdict(list)
        for day, reason in planned.unavailable.items():
            by_reason[reason.value].append(day)
        for reason, days in by_reason.items():
            ledger.record(self.home, target.key, days, "failed", now, text=reason, permanent=True)
            report.failed += len(days)
        batch = SessionBatch(target, sessions, planned.requests)
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
                    self._flush(batch, now, report, lock)
        finally:
            self._flush(batch, now, report, lock)  # whatever is finished is kept, on the way out
            report.partial = len(batch.partial)
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

    def _flush(self, batch: SessionBatch, now: datetime, report: SeriesReport, lock: Hold) -> None:
        """Write the finished sessions' bars, then record them in the ledger, while the series'
        lock is still held."""
        days, frame = batch.take_finished()
        if not days:
            return
        lock.confirm()
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
        per_year = valid.group_by(pl.col("session_date").dt.year()).len().iter_rows()
        self.on_written(
            target, {bar_store.year_file(self.home, target.key, y): n for y, n in per_year if y}
        )
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
