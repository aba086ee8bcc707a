"""How much one historical-data request may ask for, per bar size: the planner's table.

Owns the longest span the planner asks for each bar size, and a small adaptive memory that
halves a span IB refused. IB's own facts (bar sizes, the step table, the duration units and
their limits, how far back IB serves) live in `ibfacts`; this module is the planner's policy
within them. Pure: standard library and `ibfacts` only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType

from ibfacts.bars import (
    BAR_SECONDS,
    DURATION_UNITS,
    MAX_BACKFILL_YEARS,
    MIN_SECONDS,
    SMALL_BAR_STEP,
    UNIT_LIMITS,
    is_small_bar,
)
from ibfacts.history import EXPIRED_FUTURE_YEARS
from ibfacts.history import SMALL_BAR_MAX_AGE as HISTORY_SMALL_BAR_MAX_AGE
from ibfacts.messages import SPAN_TOO_LONG

# IB's cut-off for small bars is six months back from the moment a request *arrives*: the
# planner stops three days short of it, so a plan still holds when its last request is sent.
SMALL_BAR_MAX_AGE = HISTORY_SMALL_BAR_MAX_AGE - timedelta(days=3)
EXPIRED_FUTURE_MAX_AGE = timedelta(days=365 * EXPIRED_FUTURE_YEARS)
SESSIONS_PER_YEAR = 252  # a five-day exchange calendar; only used to turn a halved Y into D

_SPAN = re.compile(rf"^(\d+) ([{DURATION_UNITS}])$")


@dataclass(frozen=True)
class Span:
    """A durationStr: `count unit`, checked against IB's unit limits (not the year cap)."""

    count: int
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in DURATION_UNITS:
            raise ValueError(f"unknown duration unit {self.unit!r}")
        if self.count < (MIN_SECONDS if self.unit == "S" else 1):
            raise ValueError(f"duration {self} is below IB's minimum")
        if self.count > UNIT_LIMITS.get(self.unit, self.count):
            raise ValueError(f"duration {self} is above IB's limit for {self.unit}")

    def __str__(self) -> str:
        return f"{self.count} {self.unit}"

    @classmethod
    def parse(cls, text: str) -> Span:
        match = _SPAN.match(text.strip())
        if not match:
            raise ValueError(f"not a duration: {text!r} (expected 'N S|D|W|M|Y')")
        return cls(int(match.group(1)), match.group(2))


# Bars of 1 min and longer (grow within IB's limits, halve when IB refuses).
# One budget for every size: about 14,400 bars per answer, i.e. ten 24-hour sessions of 1-min
# bars. That is about 1 MB on the wire, under 8 % of the 16 MiB frame (≈ 200,000 bars), so a
# 23-hour futures or FX session and a 16-hour extended-hours stock session both fit with room,
# and it keeps each answer small enough for IB's soft throttle (5 D of 1-min bars answered in
# 8 s, 6 D once stalled past 60 s: github.com/erdewit/ib_insync issue 268; QuantConnect's LEAN
# asks 7 D). Sessions per request are then 10 × the bar's minutes, in D up to IB's 365 D; past
# that, whole years at 260 sessions a year (FX, the busiest calendar), rounded down. Y ends at
# MAX_BACKFILL_YEARS.
#   1 min   10 D  10 × 1,380 (23 h) = 13,800 bars      30 mins  300 D  300 × 46 = 13,800
#   2 mins  20 D  20 × 690 = 13,800                    1 hour     2 Y  2 × 260 × 23 = 11,960
#   3 mins  30 D  30 × 460 = 13,800                    2 hours    4 Y  4 × 260 × 12 = 12,480
#   5 mins  50 D  50 × 276 = 13,800                    3 hours    6 Y  6 × 260 × 8 = 12,480
#   10 mins 100 D 100 × 138 = 13,800                   4 hours    9 Y  9 × 260 × 6 = 14,040
#   15 mins 150 D 150 × 92 = 13,800                    8 hours   18 Y  18 × 260 × 3 = 14,040
#   20 mins 200 D 200 × 69 = 13,800                    1 day, 1 week, 1 month: 30 Y ≤ 7,800
# W and M are never used: 365 D reaches further than 52 W or 12 M. Y is calendar time; the
# planner uses it only where D cannot reach.
_LARGE_BAR_SPANS = {
    "1 min": "10 D", "2 mins": "20 D", "3 mins": "30 D", "5 mins": "50 D", "10 mins": "100 D",
    "15 mins": "150 D", "20 mins": "200 D", "30 mins": "300 D", "1 hour": "2 Y",
    "2 hours": "4 Y", "3 hours": "6 Y", "4 hours": "9 Y", "8 hours": "18 Y",
    "1 day": "30 Y", "1 week": "30 Y", "1 month": "30 Y",
}  # fmt: skip


def refusal_halves(code: int, text: str) -> bool:
    """Whether IB's answer says the span was too long for the bar size (a soft-throttle
    timeout means the same, and the caller treats it so)."""
    return code == 162 and any(marker in text for marker in SPAN_TOO_LONG)


@dataclass(frozen=True)
class DurationTable:
    """The longest span the planner asks per bar size; immutable, so callers can persist it
    (`as_strings`/`from_strings`) and replace it when IB refuses a span (`halve`)."""

    spans: Mapping[str, Span]
    max_years: int = MAX_BACKFILL_YEARS

    def __post_init__(self) -> None:
        object.__setattr__(self, "spans", MappingProxyType(dict(self.spans)))
        if set(self.spans) != set(BAR_SECONDS):
            raise ValueError("a duration table needs a span for every bar size")
        for bar_size, span in self.spans.items():
            if is_small_bar(bar_size):
                if span.unit != "S" or span.count > SMALL_BAR_STEP[bar_size]:
                    raise ValueError(f"{bar_size}: small bars need S within the step table")
            elif span.unit not in "DY" or (
                span.unit == "Y" and not 2 <= span.count <= self.max_years
            ):  # 1 Y reaches less far than 365 D
                raise ValueError(f"{bar_size}: {span} is not D, or 2 Y to {self.max_years} Y")

    @classmethod
    def default(cls, max_years: int = MAX_BACKFILL_YEARS) -> DurationTable:
        spans = {size: Span(seconds, "S") for size, seconds in SMALL_BAR_STEP.items()}
        for size, text in _LARGE_BAR_SPANS.items():
            span = Span.parse(text)
            if span.unit == "Y":  # the server's year cap; below 2 Y, 365 D reaches further
                span = Span(min(span.count, max_years), "Y") if max_years >= 2 else Span(365, "D")
            spans[size] = span
        return cls(spans, max_years)

    def span(self, bar_size: str) -> Span:
        if bar_size not in self.spans:
            raise ValueError(f"unknown bar size {bar_size!r}")
        return self.spans[bar_size]

    def halve(self, bar_size: str) -> DurationTable:
        """The table with `bar_size`'s span halved: never below one session, nor below the
        smallest legal S; S stays a whole number of bars so request edges fall between bars."""
        span = self.span(bar_size)
        if span.unit == "S":
            bar = BAR_SECONDS[bar_size]
            half = Span(max(MIN_SECONDS, span.count // 2 // bar * bar), "S")
        elif span.unit == "D":
            half = Span(max(1, span.count // 2), "D")
        elif span.count >= 4:
            half = Span(span.count // 2, "Y")
        else:  # 2 or 3 Y: half of it in sessions fits in D
            half = Span(min(UNIT_LIMITS["D"], span.count * SESSIONS_PER_YEAR // 2), "D")
        return DurationTable({**self.spans, bar_size: half}, self.max_years)

    def as_strings(self) -> dict[str, str]:
        return {size: str(span) for size, span in self.spans.items()}

    @classmethod
    def from_strings(
        cls, spans: Mapping[str, str], max_years: int = MAX_BACKFILL_YEARS
    ) -> DurationTable:
        """A persisted table; bar sizes it lacks take the default span."""
        merged = cls.default(max_years).as_strings() | dict(spans)
        return cls({size: Span.parse(text) for size, text in merged.items()}, max_years)
