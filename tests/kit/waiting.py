"""Bounded waits on an observable condition: a test waits for what it needs to see, never for a
fixed number of seconds, so a slow machine only makes it slower, never red. The timeout only
bounds a hang."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Callable

from ib_async import IB, util

WAIT = 60.0  # real seconds any one condition may take: generous, it only ends a hang


def poll_until(
    done: Callable[[], bool],
    what: str,
    timeout: float = WAIT,
    every: float = 0.05,
    alive: subprocess.Popen | None = None,
) -> None:
    """Until `done()` holds; fails naming `what` after `timeout`, or at once if `alive` died."""
    deadline = time.monotonic() + timeout
    while not done():
        if alive is not None:
            assert alive.poll() is None, f"the process died before {what}"
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(every)


async def until(
    done: Callable[[], bool],
    what: str = "the condition",
    timeout: float = WAIT,
    every: float = 0.01,
) -> None:
    """Until `done()` holds, on the running event loop; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        await asyncio.sleep(every)


def ib_until(ib: IB, done: Callable[[], bool], what: str = "the answer", timeout: float = WAIT):
    """Let ib_async's loop run until `done()` holds; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        ib.sleep(0.02)


def until_disconnected(*clients: IB) -> None:
    """Run ib_async's loop until none of `clients` is connected (ib_async raises the
    disconnect's ConnectionError out of whatever it is running at that moment: expected)."""
    deadline = time.monotonic() + WAIT
    while any(ib.isConnected() for ib in clients):
        assert time.monotonic() < deadline, "a client still thinks it is connected"
        with contextlib.suppress(ConnectionError):
            util.run(asyncio.sleep(0.05))
