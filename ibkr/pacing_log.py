"""The durable request log one IB login shares across processes, and the pacer over it.

Owns `SharedPacer`: one SQLite file per login under `$IBW_HOME/pacing/`, in WAL mode. Every
decision reads the log and records its reservation in one `BEGIN IMMEDIATE` transaction (a write
lock taken before the read), so two processes or threads can never both decide on the same state:
each sees the reservations of all the others. The decision itself is `ibkr.pacer`. May import
the standard library and `ibkr.pacer`.

A reservation is a row in the log from the moment it is made: it counts against every rule and
holds an open slot until released or until its lease ends (a killed process frees its slot).
A send must follow its reservation closely: `confirm` moves a reservation that is late, or that
the rules no longer allow at its time (a 162 penalty came, or a priority request overtook it),
to the back of the queue instead of letting it go.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ibkr.pacer import LogEntry, PacingBudget, RequestKey, earliest_send, slot_free_at, used

SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a stale id never hits a new row
    at REAL NOT NULL,
    weight INTEGER NOT NULL,
    key TEXT NOT NULL,
    identity TEXT NOT NULL,
    small INTEGER NOT NULL,
    holds_until REAL NOT NULL,
    block INTEGER NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0
)
"""
COLUMNS = "at, weight, key, identity, small, holds_until, block, priority"


@dataclass(frozen=True)
class Reservation:
    """A place in the shared log. Send the request only once `confirmed` (see `wait`)."""

    id: int
    request: RequestKey
    send_at: float
    confirmed: bool = False
    priority: bool = False  # may use the budget's reserve (see ibkr.pacer)


class SharedPacer:
    """IB's pacing for every process on one login, through a shared SQLite log."""

    def __init__(
        self,
        path: Path,
        budget: PacingBudget | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = 0.5,
        busy_timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.budget = budget or PacingBudget()
        self.clock = clock
        self.sleep = sleep
        self.poll = poll  # how often a request waiting for an open slot looks again
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection for the pacer's life: closing the last connection to a WAL file
        # checkpoints it, which would cost more than the decision. The lock serialises threads;
        # BEGIN IMMEDIATE serialises processes.
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()
        try:
            self._db.execute("PRAGMA journal_mode = WAL")  # kept by the file: readers never block
            # In WAL mode NORMAL survives a killed process; only power loss can drop the last
            # commits, and a power loss also ends the IB session these entries pace.
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._transaction() as db:
                db.execute(SCHEMA)
                columns = {row[1] for row in db.execute("PRAGMA table_info(sends)")}
                if "priority" not in columns:  # a log written before the reserve existed
                    db.execute("ALTER TABLE sends ADD COLUMN priority INTEGER NOT NULL DEFAULT 0")
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SharedPacer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def for_login(cls, home: Path, host: str, port: int, login_key: str, **kwargs) -> SharedPacer:
        """The pacer of one login: IB paces per login, so every process on it shares the file.

        `login_key` names the login (an account id, a user name), never a secret.
        """
        name = "_".join(_safe(part) for part in (host, str(port), login_key))
        return cls(Path(home) / "pacing" / f"{name}.sqlite", **kwargs)

    # ----------------------------------------------------------------- the decision
    def reserve(self, request: RequestKey, priority: bool = False) -> Reservation:
        """Take the earliest legal place for `request` in the log.

        `priority` (the live service's real-time bars) may use the budget's reserve and goes
        before reservations without it. When every open slot is held this waits (polling, with
        the injected sleep) for one.
        """
        while True:
            with self._transaction() as db:
                now = self.clock()
                log = self._log(db)
                free_at = slot_free_at(log, now, self.budget)
                if free_at <= now:
                    at = earliest_send(log, request, now, self.budget, priority)
                    row = self._insert(db, request, at, priority=priority)
                    return Reservation(row, request, at, priority=priority)
            self.sleep(min(free_at - now, self.poll))

    def confirm(self, reservation: Reservation) -> Reservation:
        """At or after `send_at`: confirmed if the request may go now, else rescheduled.

        It may go if it is at most half the slack late and the rules allow it now given every
        entry up to now (a 162 penalty or a priority request may have come since it was
        placed); its lease then runs from now. Otherwise it moves to the earliest legal place
        left.
        """
        budget, request, priority = self.budget, reservation.request, reservation.priority
        with self._transaction() as db:
            now = self.clock()
            row = db.execute("SELECT at FROM sends WHERE id = ?", (reservation.id,)).fetchone()
            if row is not None and now < row[0]:
                return replace(reservation, send_at=row[0], confirmed=False)
            others = self._log(db, without=reservation.id)
            before = [e for e in others if e.at <= now]
            allowed = earliest_send(before, request, now, budget, priority) <= now
            if row is not None and now <= row[0] + budget.slack / 2 and allowed:
                db.execute(
                    "UPDATE sends SET sent = 1, holds_until = ? WHERE id = ?",
                    (now + budget.lease, reservation.id),
                )
                return replace(reservation, send_at=row[0], confirmed=True)
            at = earliest_send(others, request, now, budget, priority)
            self._insert(db, request, at, reservation.id, priority)
            return replace(reservation, send_at=at, confirmed=False)

    def wait(self, reservation: Reservation) -> Reservation:
        """Sleep until the request may go; send it as soon as this returns."""
        while not reservation.confirmed:
            delay = reservation.send_at - self.clock()
            if delay > 0:
                self.sleep(delay)
            reservation = self.confirm(reservation)
        return reservation

    def release(self, reservation: Reservation) -> None:
        """The request is answered or cancelled: free its open slot.

        A reservation that was never confirmed was never sent, so it leaves the log entirely.
        """
        with self._transaction() as db:
            db.execute("DELETE FROM sends WHERE id = ? AND sent = 0", (reservation.id,))
            db.execute(
                "UPDATE sends SET holds_until = min(holds_until, ?) WHERE id = ?",
                (self.clock(), reservation.id),
            )

    @contextmanager
    def slot(self, request: RequestKey, priority: bool = False) -> Iterator[Reservation]:
        """Reserve, wait and yield (send inside the block); release on exit, whatever happens."""
        reservation = self.reserve(request, priority)
        try:
            reservation = self.wait(reservation)
            yield reservation
        finally:
            self.release(reservation)

    def record_violation(self, now: float | None = None) -> None:
        """IB answered 162 (pacing violation): no small-bar request until the window has cleared."""
        at = self.clock() if now is None else now
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO sends ({COLUMNS}) VALUES (?, 0, '', '', 1, 0, 1, 0)",
                (at,),
            )

    def used(self, now: float | None = None) -> int:
        """Small-bar budget taken in the current window, reservations included."""
        with self._transaction() as db:
            at = self.clock() if now is None else now
            return used(self._log(db), at, self.budget)

    def log(self) -> list[LogEntry]:
        """Every entry the rules can still see, for reports and tests."""
        with self._transaction() as db:
            return self._log(db)

    # ----------------------------------------------------------------- storage
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Read, decide and write with the file's write lock held throughout."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _log(self, db: sqlite3.Connection, without: int | None = None) -> list[LogEntry]:
        """The live entries, after dropping those no rule can see any more."""
        now = self.clock()
        db.execute(
            "DELETE FROM sends WHERE at < ? AND holds_until <= ?",
            (now - self.budget.horizon, now),
        )
        rows = db.execute(f"SELECT {COLUMNS} FROM sends WHERE id IS NOT ?", (without,))
        return [
            LogEntry(at, weight, key, identity, bool(small), until, bool(block), bool(priority))
            for at, weight, key, identity, small, until, block, priority in rows
        ]

    def _insert(
        self,
        db: sqlite3.Connection,
        request: RequestKey,
        at: float,
        row: int | None = None,
        priority: bool = False,
    ) -> int:
        """Record a reservation (or move reservation `row`, keeping its id) at `at`."""
        entry = LogEntry.of(request, at, at + self.budget.lease, priority)
        cursor = db.execute(
            f"INSERT OR REPLACE INTO sends (id, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (
                row,
                entry.at,
                entry.weight,
                entry.key,
                entry.identity,
                entry.small,
                entry.holds_until,
                entry.priority,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


def _safe(part: str) -> str:
    """A file-name-safe form of a host, port or login key."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", part).strip("-") or "default"


def login_logs(home: Path, host: str, port: int) -> list[Path]:
    """The pacing logs of every login seen on one gateway (usually one)."""
    return sorted((Path(home) / "pacing").glob(f"{_safe(host)}_{_safe(str(port))}_*.sqlite"))
