"""The two databases a shared log can live in, behind one small interface: a transaction that
holds the log's write lock from its first read to its commit, and runs SQL written once with `?`
placeholders.

SQLite (a file per log) takes the file's write lock with `BEGIN IMMEDIATE`. PostgreSQL (one
database for every log of the deployment) takes a transaction-scoped advisory lock named after
the log, so decisions on one log serialise across processes and machines while other logs go on.
A PostgreSQL connection that died between two transactions (a server restart, a network cut) is
opened again, for up to RECONNECT_WINDOW; one that dies inside a transaction fails it with one
sentence.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import psycopg2

from shared_state.settings import redacted

CONNECT_TIMEOUT = 10  # seconds: a server that does not answer is an error, not a hang
RECONNECT_WINDOW = 60.0  # seconds a decision waits for a restarting server before it fails
RECONNECT_PAUSE = 0.5
# A machine that vanishes without closing its socket is noticed by TCP keepalives: about 30 s.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 4,
}


class SharedStateError(Exception):
    """The shared state could not be reached; its `sentence` names the cause and the fix (the
    command line and Dagster show an error's `sentence` as it is)."""

    @property
    def sentence(self) -> str:
        return str(self)


class Statements(Protocol):
    """What a transaction runs its statements through."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple]: ...


def advisory_key(name: str) -> int:
    """PostgreSQL's advisory locks take a 64-bit integer: a stable hash of `name`."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)


def connect(url: str):
    """A PostgreSQL connection with a bounded connect and keepalives, or one sentence why not."""
    try:
        return psycopg2.connect(url, connect_timeout=CONNECT_TIMEOUT, **KEEPALIVES)
    except psycopg2.Error as exc:
        raise unreachable(url, exc) from exc


def unreachable(url: str, exc: BaseException) -> SharedStateError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return SharedStateError(
        f"The shared state in PostgreSQL at {redacted(url)} did not answer ({reason}): check "
        "that the server runs and that IBW_POSTGRES_URL points at it."
    )


class SQLiteDatabase:
    """A log in its own SQLite file, in WAL mode; one connection for the object's life (closing
    the last connection to a WAL file checkpoints it, which would cost more than a decision)."""

    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()  # threads; BEGIN IMMEDIATE serialises processes
        try:
            self._db.execute("PRAGMA journal_mode = WAL")  # kept by the file: readers never block
            # In WAL mode NORMAL survives a killed process; only power loss can drop the last
            # commits, and a power loss also ends the IB session these entries pace.
            self._db.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def transaction(self) -> Iterator[Statements]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteStatements(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


class _SQLiteStatements:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        return self._db.execute(sql, tuple(params)).fetchall()


class PostgresDatabase:
    """A log in a PostgreSQL database shared by the deployment, its decisions serialised by the
    advisory lock `lock_name`."""

    dialect = "postgresql"

    def __init__(self, url: str, lock_name: str) -> None:
        self.url = url
        self._key = advisory_key(lock_name)
        self._lock = threading.Lock()
        self._con = connect(url)

    @contextmanager
    def transaction(self) -> Iterator[Statements]:
        with self._lock:
            cursor = self._locked_cursor()
            try:
                yield _PostgresStatements(cursor)
                self._con.commit()
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                self._con.close()  # the next transaction opens a new one
                raise unreachable(self.url, exc) from exc
            except BaseException:
                if not self._con.closed:
                    self._con.rollback()
                raise

    def _locked_cursor(self):
        """A cursor inside a new transaction that holds the log's lock. A connection that died
        since the last transaction is replaced, while the server restarts, for a bounded time."""
        deadline = time.monotonic() + RECONNECT_WINDOW
        while True:
            try:
                if self._con.closed:
                    self._con = connect(self.url)
                cursor = self._con.cursor()
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
                return cursor
            except (psycopg2.OperationalError, psycopg2.InterfaceError, SharedStateError) as exc:
                self._con.close()
                if time.monotonic() >= deadline:
                    if isinstance(exc, SharedStateError):
                        raise
                    raise unreachable(self.url, exc) from exc
                time.sleep(RECONNECT_PAUSE)

    def close(self) -> None:
        self._con.close()


class _PostgresStatements:
    def __init__(self, cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        self._cursor.execute(sql.replace("?", "%s"), tuple(params))
        return self._cursor.fetchall() if self._cursor.description else []
