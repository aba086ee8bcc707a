"""The durable request log one IB login shares across processes, and the pacer over it.

Owns `SharedPacer`: one log per login, an SQLite file under `$IBW_HOME/pacing/` by default or
rows of one PostgreSQL table when IBW_POSTGRES_URL is set (`shared_state`). Every decision reads
the log and records its reservation in one transaction that holds the login's write lock from
before the read, so two threads, processes or machines can never both decide on the same state:
each sees the reservations of all the others. The decision itself is `ibkr.pacer`. May import
the standard library, `shared_state` and `ibkr.pacer`.

A reservation is a row in the log from the moment it is made: it counts against every rule and
holds an open slot until released or until its lease ends (a killed process frees its slot).
A send must follow its reservation closely: `confirm` moves a reservation that is late, or that
the rules no longer allow at its time (a 162 penalty came, or a priority request overtook it),
to the back of the queue instead of letting it go.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ibkr.pacer import LogEntry, PacingBudget, RequestKey, earliest_send, slot_free_at, used
from shared_state.database import PostgresDatabase, SQLiteDatabase, Statements
from shared_state.settings import postgres_url

# The same columns in both databases; PostgreSQL keeps every login in one table, so a row says
# whose it is (an SQLite file is one login's, its rows have login '').
SCHEMAS = {
    "sqlite": """
CREATE TABLE IF NOT EXISTS sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a stale id never hits a new row
    login TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    weight INTEGER NOT NULL,
    key TEXT NOT NULL,
    identity TEXT NOT NULL,
    small INTEGER NOT NULL,
    holds_until REAL NOT NULL,
    block INTEGER NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0
)""",
    "postgresql": """
CREATE TABLE IF NOT EXISTS pacing_sends (
    id BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,  -- epoch seconds: REAL would round them to minutes
    weight INTEGER NOT NULL,
    key TEXT NOT NULL,
    identity TEXT NOT NULL,
    small INTEGER NOT NULL,
    holds_until DOUBLE PRECISION NOT NULL,
    block INTEGER NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pacing_sends_login_at ON pacing_sends (login, at)""",
}
TABLES = {"sqlite": "sends", "postgresql": "pacing_sends"}
# Columns added since the first SQLite logs: (name, definition); a log without them gets them.
ADDED_COLUMNS = [
    ("priority", "INTEGER NOT NULL DEFAULT 0"),
    ("login", "TEXT NOT NULL DEFAULT ''"),
]
COLUMNS = "at, weight, key, identity, small, holds_until, block, priority"


def pacing_dir(home: Path) -> Path:
    """This machine's pacing folder under `home`: the logs without PostgreSQL, and the
    durations memory (what IB refused per request shape), which each machine learns."""
    return Path(home) / "pacing"


@dataclass(frozen=True)
class Reservation:
    """A place in the shared log. Send the request only once `confirmed` (see `wait`)."""

    id: int
    request: RequestKey
    send_at: float
    confirmed: bool = False
    priority: bool = False  # may use the budget's reserve (see ibkr.pacer)


class SharedPacer:
    """IB's pacing for every process on one login, through a shared log: the SQLite file at
    `log` (a path), or the login's rows in a PostgreSQL database (`log`: a PostgresDatabase,
    with `login` naming the login)."""

    def __init__(
        self,
        log: Path | PostgresDatabase,
        budget: PacingBudget | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = 0.5,
        login: str = "",
    ) -> None:
        self.path = None if isinstance(log, PostgresDatabase) else Path(log)
        self.budget = budget or PacingBudget()
        self.clock = clock
        self.sleep = sleep
        self.poll = poll  # how often a request waiting for an open slot looks again
        self.login = login
        self._db = log if isinstance(log, PostgresDatabase) else SQLiteDatabase(Path(log))
        self._table = TABLES[self._db.dialect]
        try:
            with self._db.transaction() as db:
                db.execute(SCHEMAS[self._db.dialect])
                if self._db.dialect == "sqlite":  # a log written before a column existed
                    columns = {row[1] for row in db.execute("PRAGMA table_info(sends)")}
                    for name, definition in ADDED_COLUMNS:
                        if name not in columns:
                            db.execute(f"ALTER TABLE sends ADD COLUMN {name} {definition}")
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
        """The pacer of one login: IB paces per login, so every process on it shares its log,
        in PostgreSQL when IBW_POSTGRES_URL is set (every machine), else under `home`.

        `login_key` names the login (an account id, a user name), never a secret.
        """
        name = login_name(host, port, login_key)
        url = postgres_url()
        if url:
            return cls(PostgresDatabase(url, f"pacing {name}"), login=name, **kwargs)
        return cls(pacing_dir(home) / f"{name}.sqlite", **kwargs)

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
            [row] = db.execute(
                f"SELECT at FROM {self._table} WHERE id = ? AND login = ?",
                (reservation.id, self.login),
            ) or [None]
            if row is not None and now < row[0]:
                return replace(reservation, send_at=row[0], confirmed=False)
            others = self._log(db, without=reservation.id)
            before = [e for e in others if e.at <= now]
            allowed = earliest_send(before, request, now, budget, priority) <= now
            if row is not None and now <= row[0] + budget.slack / 2 and allowed:
                db.execute(
                    f"UPDATE {self._table} SET sent = 1, holds_until = ? WHERE id = ?",
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
            now = self.clock()
            db.execute(f"DELETE FROM {self._table} WHERE id = ? AND sent = 0", (reservation.id,))
            db.execute(
                f"UPDATE {self._table} SET holds_until = ? WHERE id = ? AND holds_until > ?",
                (now, reservation.id, now),
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
                f"INSERT INTO {self._table} (login, {COLUMNS}) "
                "VALUES (?, ?, 0, '', '', 1, 0, 1, 0)",
                (self.login, at),
            )

    def used(self, now: float | None = None) -> int:
        """Small-bar budget taken in the current window, reservations included."""
        with self._transaction() as db:
            at = self.clock() if now is None else now
            return used(self._log(db), at, self.budget)

    def logins(self, prefix: str) -> list[str]:
        """The logins with entries in this log's database whose names start with `prefix`."""
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT DISTINCT login FROM {self._table} WHERE substr(login, 1, ?) = ?",
                (len(prefix), prefix),
            )
        return sorted(login for (login,) in rows)

    def log(self) -> list[LogEntry]:
        """Every entry the rules can still see, for reports and tests."""
        with self._transaction() as db:
            return self._log(db)

    # ----------------------------------------------------------------- storage
    def _transaction(self) -> AbstractContextManager[Statements]:
        """Read, decide and write with the login's write lock held throughout."""
        return self._db.transaction()

    def _log(self, db: Statements, without: int | None = None) -> list[LogEntry]:
        """The live entries, after dropping those no rule can see any more."""
        now = self.clock()
        db.execute(
            f"DELETE FROM {self._table} WHERE login = ? AND at < ? AND holds_until <= ?",
            (self.login, now - self.budget.horizon, now),
        )
        rows = db.execute(
            f"SELECT {COLUMNS} FROM {self._table} WHERE login = ? AND id <> ?",
            (self.login, without or 0),  # ids start at 1
        )
        return [
            LogEntry(at, weight, key, identity, bool(small), until, bool(block), bool(priority))
            for at, weight, key, identity, small, until, block, priority in rows
        ]

    def _insert(
        self,
        db: Statements,
        request: RequestKey,
        at: float,
        row: int | None = None,
        priority: bool = False,
    ) -> int:
        """Record a reservation (or move reservation `row`, keeping its id) at `at`."""
        entry = LogEntry.of(request, at, at + self.budget.lease, priority)
        values = (
            entry.at, entry.weight, entry.key, entry.identity, int(entry.small),
            entry.holds_until, int(entry.priority),
        )  # fmt: skip
        if row is not None:  # a move: the same id, so the holder's reservation still finds it
            db.execute(f"DELETE FROM {self._table} WHERE id = ?", (row,))
            db.execute(
                f"INSERT INTO {self._table} (id, login, {COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (row, self.login, *values),
            )
            return row
        [(new,)] = db.execute(
            f"INSERT INTO {self._table} (login, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) "
            "RETURNING id",
            (self.login, *values),
        )
        return new


def login_name(host: str, port: int, login_key: str) -> str:
    """The name of one login's log: its gateway and its key, safe as a file name (with an empty
    key, the prefix every login of the gateway shares)."""
    gateway = "_".join(_safe(part) for part in (host, str(port)))
    return f"{gateway}_{_safe(login_key)}" if login_key else f"{gateway}_"


def _safe(part: str) -> str:
    """A file-name-safe form of a host, port or login key."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", part).strip("-") or "default"


def used_on_gateway(home: Path, host: str, port: int, budget: PacingBudget) -> int:
    """Small-bar requests used in the window on the busiest login seen on one gateway (usually
    there is one), from PostgreSQL when IBW_POSTGRES_URL is set, else from the home's files."""
    gateway = login_name(host, port, "")
    url = postgres_url()
    if url:
        with SharedPacer(PostgresDatabase(url, f"pacing {gateway}"), budget, login=gateway) as log:
            names = log.logins(gateway)
        logs: list[tuple[Path | PostgresDatabase, str]] = [
            (PostgresDatabase(url, f"pacing {name}"), name) for name in names
        ]
    else:
        logs = [(path, "") for path in sorted(pacing_dir(home).glob(f"{gateway}*.sqlite"))]
    used_most = 0
    for log, name in logs:
        with SharedPacer(log, budget, login=name) as pacer:
            used_most = max(used_most, pacer.used())
    return used_most
