"""Progress for long commands where no live bar can show: plain lines, one per step, for logs,
pipes and supervisors (a rich progress bar draws nothing when stdout is not a terminal)."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console

QUIET_WAIT = 1.0  # a shorter sleep is the pacer's slack, not a wait worth a line
WAIT_EVERY = 30.0  # seconds between two lines while one wait goes on


class PlainProgress:
    """A line per request sent, and a line when a pacing wait starts (again every WAIT_EVERY
    seconds while it lasts), so a log never goes quiet for minutes without saying why."""

    def __init__(
        self, console: Console, total: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.console, self.total, self.clock = console, total, clock
        self.sent = 0
        self._waited = 0.0  # seconds slept since the last request
        self._said: float | None = None  # when this wait was last reported

    def request(self, series: str, what: str) -> None:
        self.sent += 1
        self._waited, self._said = 0.0, None
        self._line(f"[{self.sent}/{self.total}] {series}: {what}")

    def waiting(self, seconds: float) -> None:
        """The pacer is about to sleep `seconds` (one of possibly several sleeps in a row)."""
        self._waited += seconds
        now = self.clock()
        if self._waited < QUIET_WAIT:
            return
        if self._said is not None and now - self._said < WAIT_EVERY:
            return
        self._said = now
        self._line(
            f"waiting for IB's pacing window ({self.sent} of {self.total} requests sent; "
            f"next try in {seconds:.1f} s)"
        )

    def _line(self, text: str) -> None:
        self.console.print(text, soft_wrap=True, highlight=False, markup=False)
