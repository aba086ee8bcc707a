"""How much one historical-data request may ask for, per bar size: the planner's table.

Owns, in one place: IB's bar-size strings and their seconds, the duration units and their
limits, the availability limits the planner must respect, the longest span the planner asks
for each bar size, and a small adaptive memory that halves a span IB refused. Pure: standard
library only. Source: IB's TWS API documentation on historical bar data (the valid bar sizes,
the duration units and their limits, the table of the longest duration per bar size, and the
historical data limitations), cross-checked against the answers of the embedded gateway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType

# The 21 exact barSizeSetting strings IB accepts (§2.1: Campus §21.03.03, old docs
# historical_bars). Day, week and month bars follow sessions; their seconds are nominal.
BAR_SECONDS: Mapping[str, int] = MappingProxyType({
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600,
    "15 mins": 900, "20 mins": 1_200, "30 mins": 1_800, "1 hour": 3_600, "2 hours": 7_200,
    "3 hours": 10_800, "4 hours": 14_400, "8 hours": 28_800,
    "1 day": 86_400, "1 week": 604_800, "1 month": 2_592_000,
})  # fmt: skip
SMALL_BAR_SECONDS = 30  # bars of 30 s or less fall under IB's hard pacing rules (§1.1)


def is_small_bar(bar_size: str) -> bool:
    """Bars of 30 s or less: hard-paced, step-table spans, six months of history (§1, §2.5)."""
    return BAR_SECONDS[bar_size] <= SMALL_BAR_SECONDS


# Units and the largest count each takes before IB says "use years" (§2.2: rust-ibapi#837,
# verified on a paper account for S and D; ibx for W and M). Y is capped by the server's
# "Max API Backfill Years" (tag 6774, value for real accounts unknown ⚠), a setting here.
UNIT_LIMITS: Mapping[str, int] = MappingProxyType({"S": 86_400, "D": 365, "W": 52, "M": 12})
MIN_SECONDS = 30  # "N S" with N < 30 is "Historical data requested duration is invalid." (ibx)
MAX_BACKFILL_YEARS = 30
SESSIONS_PER_YEAR = 252  # a five-day exchange calendar; only used to turn a halved Y into D

# Availability (§2.5, Campus §21.01.04). IB's cut-off for small bars is six months back from
# the moment a request *arrives*; 180 days leaves a few days for a plan to be sent.
SMALL_BAR_MAX_AGE = timedelta(days=180)
EXPIRED_FUTURE_MAX_AGE = timedelta(days=2 * 365)  # expired futures: two years after expiry

# Bars of 30 s or less: the old docs' step table (duration -> smallest bar), with 1 secs at the
# Campus "Max Duration Per Bar Size" 2000 S (LEAN uses 2000 S too). Chosen over the Campus'
# looser 86400 S because a refused small-bar request still spends pacing budget (§2.3 planner
# rule; 1 D of 1-s bars is refused with 162 "invalid step", wrighter/ib-scripts#1). Must match
# ibsim.rules.MAX_SMALL_BAR_SPAN, the gateway's copy (a test checks).
SMALL_BAR_STEP: Mapping[str, int] = MappingProxyType(
    {"1 secs": 2_000, "5 secs": 3_600, "10 secs": 14_400, "15 secs": 14_400, "30 secs": 28_800}
)

_UNITS = "SDWMY"
_SPAN = re.compile(r"^(\d+) ([SDWMY])$")


@dataclass(frozen=True)
class Span:
    """A durationStr: `count unit`, checked against IB's unit limits (not the year cap)."""

    count: int
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in _UNITS:
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


# Bars of 1 min and longer (§2.3 planner rule: grow within the Campus limits, halve on refusal).
# One budget for every size: about 14,400 bars per answer, i.e. ten 24-hour sessions of 1-min
# bars. That is about 1 MB on the wire, under 8 % of the 16 MiB frame (≈ 200,000 bars), so a
# 23-hour futures or FX session and a 16-hour extended-hours stock session both fit with room,
# and it keeps each answer small enough for IB's soft throttle (5 D of 1-min bars answered in
# 8 s, 6 D once stalled past 60 s: ib_insync#268; LEAN asks 7 D). Sessions per request are then
# 10 × the bar's minutes, in D up to IB's 365 D; past that, whole years at 260 sessions a year
# (FX, the busiest calendar), rounded down. Y ends at MAX_BACKFILL_YEARS.
#   1 min   10 D  10 × 1,380 (23 h) = 13,800 bars      30 mins  300 D  300 × 46 = 13,800
#   2 mins  20 D  20 × 690 = 13,800                    1 hour     2 Y  2 × 260 × 23 = 11,960
#   3 mins  30 D  30 × 460 = 13,800                    2 hours    4 Y  4 × 260 × 12 = 12,480
#   5 mins  50 D  50 × 276 = 13,800                    3 hours    6 Y  6 × 260 × 8 = 12,480
#   10 mins 100 D 100 × 138 = 13,800                   4 hours    9 Y  9 × 260 × 6 = 14,040
#   15 mins 150 D 150 × 92 = 13,800                    8 hours   18 Y  18 × 260 × 3 = 14,040
#   20 mins 200 D 200 × 69 = 13,800                    1 day, 1 week, 1 month: 30 Y ≤ 7,800
# W and M are never used: 365 D reaches further than 52 W or 12 M. Y is calendar time; the
# planner uses it only where D cannot reach (§2.2).
_LARGE_BAR_SPANS = {
    "1 min": "10 D", "2 mins": "20 D", "3 mins": "30 D", "5 mins": "50 D", "10 mins": "100 D",
    "15 mins": "150 D", "20 mins": "200 D", "30 mins": "300 D", "1 hour": "2 Y",
    "2 hours": "4 Y", "3 hours": "6 Y", "4 hours": "9 Y", "8 hours": "18 Y",
    "1 day": "30 Y", "1 week": "30 Y", "1 month": "30 Y",
}  # fmt: skip

# 162 texts that mean "ask for less" (§2.3); a soft-throttle timeout means the same.
HALVING_REFUSALS = ("invalid step", "Time length exceed max")


def refusal_halves(code: int, text: str) -> bool:
    """Whether IB's answer says the span was too long for the bar size."""
    return code == 162 and any(marker in text for marker in HALVING_REFUSALS)


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
