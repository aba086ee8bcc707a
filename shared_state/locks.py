"""Locks with one holder at a time that die with their holder: `flock` on a file (one machine)
or a session-scoped PostgreSQL advisory lock (every machine on the server).

`flock` locks belong to the open file, so the kernel frees them when their process dies, even
by `kill -9`; a stale lock file is harmless. An advisory lock belongs to its database session,
so the server frees it when the holder's connection ends: at once when the process dies (the
kernel closes its socket), within about 30 s (TCP keepalives) when its machine vanishes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from shared_state.database import advisory_key, connect, unreachable
from shared_state.settings import postgres_url


@contextmanager
def try_lock(home: Path, name: str) -> Iterator[bool]:
    """Hold the lock called `name` if nobody else does; yields whether it is held. In
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
def try_lock_file(path: Path) -> Iterator[bool]:
    """Hold the lock on the file at `path` (created if need be) if nobody else does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def try_advisory_lock(url: str, name: str) -> Iterator[bool]:
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
        yield bool(held)
    finally:
        con.close()
