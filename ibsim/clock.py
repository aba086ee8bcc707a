"""The gateway's notion of now: the wall clock, or a manual clock that tests move by hand; and
the gateway's time zone."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

TWS_ZONE = ZoneInfo("America/New_York")  # the gateway's zone: its "today" and its time stamps


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until advanced, so pacing windows and 'now' are exact in tests."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


class ShiftedClock:
    """The wall clock's pace (or `speed` times it) from a chosen start: 'now' is a fixed day,
    pacing windows are real. A speed above 1 lets a test live through an hour of streaming in
    minutes: 5-second bars, fills and sessions all follow this clock."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("ShiftedClock needs a timezone-aware start time")
        if speed <= 0:
            raise ValueError("ShiftedClock needs a positive speed")
        self._start = start.astimezone(UTC)
        self._t0 = time.monotonic()
        self.speed = speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)
