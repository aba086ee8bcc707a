"""One live service per home: an exclusive lock, held for the process's life, that names its holder.

Two services on one home would share one journal: each would reconcile and place the other's
orders, under its own client id or fighting over one. So the service takes `flock` on
`live/service.lock` (shared_state.locks) before it connects and writes its pid into the file; a
second one refuses at start with one sentence naming that pid. The kernel frees the lock when
its holder dies, even by kill -9, so a stale file never blocks the next start.

IB's own state (orders, client ids, pacing) is per login, so with the shared state in PostgreSQL
(IBW_POSTGRES_URL, several machines) a service also holds its login's lock once connected:
two homes on one login, on any machines, exclude each other (`hold_login`). Without PostgreSQL
the home's lock is the only one, as one machine needs no more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ibkr.exceptions import IBWError
from shared_state.locks import try_advisory_lock, try_lock_file
from shared_state.settings import postgres_url


class ServiceRunning(IBWError):
    """Another live service holds this home."""

    default_cause = "another live service runs on this home"
    default_fix = "stop it first, or start this one with another --home"


def lock_path(home: Path) -> Path:
    return Path(home) / "live" / "service.lock"


@contextmanager
def hold_home(home: Path) -> Iterator[None]:
    """Hold the home's live-service lock for the block, or raise `ServiceRunning` at once."""
    path = lock_path(home)
    with try_lock_file(path) as held:
        if not held:
            pid = holder(path)
            who = f"another live service (pid {pid})" if pid else "another live service"
            stop = f"stop it (kill {pid})" if pid else "stop it"
            raise ServiceRunning(
                f"{who} already runs on {home}", f"{stop} or start this one with another --home"
            )
        path.write_text(f"{os.getpid()}\n")  # a second descriptor: the lock stays with the first
        yield


@contextmanager
def hold_login(login: str) -> Iterator[None]:
    """With the shared state in PostgreSQL, hold the IB login's live-service lock for the block
    (any machine), or raise `ServiceRunning` at once; without it, nothing to hold."""
    url = postgres_url()
    if url is None:
        yield
        return
    with try_advisory_lock(url, f"live service {login}") as held:
        if not held:
            raise ServiceRunning(
                f"another live service already runs on IB login {login} (on this machine or "
                "another that shares IBW_POSTGRES_URL)",
                "stop it first (two on one login would reconcile and place each other's orders)",
            )
        yield


def holder(path: Path) -> int | None:
    """The pid the holder wrote, if it has written it yet."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
