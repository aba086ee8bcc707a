"""Ctrl-C and SIGTERM for long commands: one exception, raised where it cannot leave a mess.

Python raises KeyboardInterrupt wherever the main thread happens to be (inside a Parquet write,
inside the event loop's machinery), and SIGTERM ends the process without a word. Inside
`interruptible()` both become `Interrupted`, raised only at safe points: while an IB request is
in flight the signal cancels the event loop's tasks, so every task ends awaited and the loop
unwinds through the callers' `finally` blocks; during a pacing wait (`Stop.sleep`) it is raised
at once; anywhere else it waits for the next `Stop.check`.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The command was stopped by `signum`; shells expect it to exit with 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signame(self) -> str:
        """SIGINT is what Ctrl-C sends; users know it by that name."""
        return "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name


class Stop:
    """The first stop signal received, and the safe points where it is raised."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._sleeping = False

    def check(self) -> None:
        """Raise Interrupted if a signal came: call it between steps that must not be cut."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    def sleep(self, seconds: float) -> None:
        """time.sleep that a signal cuts short (for the pacer's waits)."""
        self.check()
        self._sleeping = True
        try:
            time.sleep(seconds)
        finally:
            self._sleeping = False

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no request in flight
            if self._sleeping:
                raise Interrupted(self.signum) from None
            return  # raised at the next check
        for task in asyncio.all_tasks(loop):
            task.cancel()


@contextmanager
def interruptible() -> Iterator[Stop]:
    """SIGINT and SIGTERM end the block with Interrupted (their old handlers come back after);
    the block calls `check()` at its safe points and sleeps with `sleep()`."""
    stop = Stop()
    previous = {sig: signal.signal(sig, stop.on_signal) for sig in SIGNALS}
    try:
        yield stop
        stop.check()
    except asyncio.CancelledError:
        if stop.signum is None:
            raise
        raise Interrupted(stop.signum) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
