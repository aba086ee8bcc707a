"""Locks with one holder at a time that die with their holder: `flock` on a file (one machine)
or a session-scoped PostgreSQL advisory lock (every machine on the server).

`flock` locks belong to the open file, so the kernel frees them when their process dies, even
by `kill -9`; a stale lock file is harmless. An advisory lock belongs to its database session,
so the server frees it when the holder's connection ends: at once when the process dies (the
kernel closes its socket), within about 30 s (TCP keepalives) when its machine vanishes, and
when the server restarts, while the holder still runs. So a holder calls `Hold.confirm()`
before each write it commits: a lock the server dropped stops the holder with one sentence.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from shared_state.database import SharedStateError, advisory_key, connect, unreachable
from shared_state.settings import postgres_url, redacted


@dataclass
class Hold:
    """What `try_lock` yields: true while the lock is held."""

    held: bool
    name: str = ""
    session: psycopg2.extensions.connection | None = None  # the advisory lock's, if any
    url: str = ""

    def __bool__(self) -> bool:
        return self.held

    def confirm(self) -> None:
        """Raise SharedStateError if the server has dropped the lock since it was taken."""
        if self.session is None:
            return  # a file lock lasts as long as its process
        try:
            with self.session.cursor() as cursor:
                cursor.execute("SELECT 1")  # a live session still holds its session locks
        except psycopg2.Error:
            raise SharedStateError(
                f"The shared state in PostgreSQL at {redacted(self.url)} dropped the lock on "
                f"{self.name} (the server restarted or the connection broke), so nothing more "
                "is written under it: run again to resume."
            ) from None


@contextmanager
def try_lock(home: Path, name: str) -> Iterator[Hold]:
    """Hold the lock called `name` if nobody else does; yields a `Hold`, true when held. In
    PostgreSQL when IBW_POSTGRES_URL is set, else a file under `home`/locks/."""
    url = postgres_url()
    if url:
        with try_advisory_lock(url, name) as held:
            yield held
        return
    digest = hashlib.sha1(name.encode()).hexdigest()[:20]
    with try_lock_file(Path(home) / "locks" / f"{digest}.lock") as held:
        yield held


@contextmanager
def try_lock_file(path: Path) -> Iterator[Hold]:
    """Hold the lock on the file at `path` (created if need be) if nobody else does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield Hold(False)
            return
        yield Hold(True)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def try_advisory_lock(url: str, name: str) -> Iterator[Hold]:
    """Hold the advisory lock `name` on the server at `url` if no session does, on a connection
    of its own for as long as it is held (closing it releases the lock)."""
    con = connect(url)
    try:
        con.autocommit = True  # a session lock, outside any transaction
        try:
            with con.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (advisory_key(name),))
                [(held,)] = cursor.fetchall()
        except psycopg2.Error as exc:
            raise unreachable(url, exc) from exc
        yield Hold(True, name, con, url) if held else Hold(False)
    finally:
        con.close()
