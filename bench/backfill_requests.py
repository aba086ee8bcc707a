"""Backfill requests: how many historical-data requests the planner sends, against two baselines.

Every request waits on IB: bars of 30 s or less get 60 per 10 minutes per login, and larger
bars are slowed by the size of each answer. So a backfill's cost is its request count. For each
workload shape this counts the requests for the same fetchable sessions (the gateway's own
calendar, `ibsim.market.calendars`; NOW is fixed, so the figures never change) of
  planner   ibkr.planner.plan over every session, against ibkr.planner.lower_bound
            (trading time ÷ the longest span of the planner's default table);
  1 D each  one `1 D` request per session, as download scripts do;
  Y/D/S     NautilusTrader's `_calculate_duration_segments`: one `N Y`, one `N D` and one
            `N S` request over the calendar span, whatever the bar size.
Each baseline request is checked with the embedded gateway's rules (ibsim.market.rules: units, year
cap, small-bar step table) and against the largest answer one message can carry. "Made legal"
re-splits each refused request at the planner table's spans (the lower bound of what that
request was meant to cover) and keeps the others.
Goal: planner ≤ 1.02 × lower bound on every shape; the exit status is 1 otherwise.

    uv run python bench/backfill_requests.py
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from ibkr.durations import BAR_SECONDS, SMALL_BAR_MAX_AGE, DurationTable
from ibkr.planner import Series, Session, lower_bound, plan
from ibsim.market import errors, rules
from ibsim.market.calendars import sessions as venue_sessions

NOW = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)  # the planner tests' clock
TABLE = DurationTable.default()
GOAL = 1.02
# An answer must fit one 0xFFFFFF-byte message; at formatDate 2 a bar takes about 59 bytes
# (docs/BENCHMARKS.md, gateway cost per bar). The gateway refuses bigger answers with 162.
MAX_ANSWER_BARS = 0xFFFFFF // 59
SESSION_BARS = ("1 day", "1 week", "1 month")


@dataclass(frozen=True)
class Shape:
    name: str
    venue: str
    first: date  # the first and last session wanted
    last: date
    series: Series
    expiry: date | None = None


def stock(name: str, bar_size: str, first: date, rth: bool = True) -> Shape:
    series = Series(265598, "STK", "SMART", bar_size, "TRADES", rth)
    return Shape(name, "us_equity", first, NOW.date(), series)


SHAPES = (
    stock("AAPL 1 min RTH 5 Y", "1 min", date(2021, 1, 1)),
    stock("AAPL 1 min full 5 Y", "1 min", date(2021, 1, 1), rth=False),
    stock("AAPL 5 secs RTH 6 M", "5 secs", (NOW - SMALL_BAR_MAX_AGE).date() + timedelta(1)),
    stock("AAPL 1 day RTH 20 Y", "1 day", date(2006, 1, 1)),
    stock("AAPL 1 hour RTH 10 Y", "1 hour", date(2016, 1, 1)),
    Shape(
        "ESU5 1 min full, expired",
        "cme_globex",
        date(2024, 9, 20),  # the day after ESU4 expired
        date(2025, 9, 19),
        Series(637533641, "FUT", "CME", "1 min", "TRADES", False),
        expiry=date(2025, 9, 19),
    ),
    Shape(
        "EUR.USD 1 hour MID 2 Y",
        "fx_idealpro",
        date(2024, 1, 1),
        NOW.date(),
        Series(12087792, "CASH", "IDEALPRO", "1 hour", "MIDPOINT", False),
    ),
)


# ------------------------------------------------------------------- sessions and IB's answers
def listing(venue: str, rth: bool) -> list[Session]:
    """Every session of the venue's calendar, as the planner takes them."""
    table = venue_sessions(venue, rth)
    return [
        Session(d.astype(date), datetime.fromtimestamp(o, UTC), datetime.fromtimestamp(c, UTC))
        for d, o, c in zip(table.dates, table.opens.tolist(), table.closes.tolist(), strict=True)
    ]


def clipped(cal: Sequence[Session], lo: datetime, hi: datetime) -> list[Session]:
    """The parts of the sessions inside [lo, hi)."""
    return [
        Session(s.day, max(s.open, lo), min(s.close, hi))
        for s in cal
        if s.open < hi and s.close > lo
    ]


def bars_in(cal: Sequence[Session], bar_size: str) -> int:
    if bar_size in SESSION_BARS:
        return len(cal)
    bar = BAR_SECONDS[bar_size]
    return sum(math.ceil((s.close - s.open).total_seconds() / bar) for s in cal)


def served(full: Sequence[Session], end: datetime, duration: str, bar_size: str) -> int:
    """Bars IB answers: S counts trading seconds, D sessions, Y calendar years."""
    count, unit = int(duration.split()[0]), duration.split()[1]
    if unit == "S":
        return count // BAR_SECONDS[bar_size] if bar_size not in SESSION_BARS else 1
    if unit == "D":
        last = [s for s in full if s.open < end][-count:]
        return bars_in(clipped(last, last[0].open, end), bar_size)
    day = 28 if (end.month, end.day) == (2, 29) else end.day
    return bars_in(clipped(full, end.replace(year=end.year - count, day=day), end), bar_size)


def refusal(bar_size: str, duration: str, bars: int) -> str | None:
    """Why IB refuses the request, as the embedded gateway decides; None if it is served."""
    try:
        parsed = rules.parse_duration(duration)
        rules.check_duration_limits(parsed, TABLE.max_years)
        rules.check_step(rules.bar_kind(bar_size), parsed)
    except errors.IBError as refused:
        return "step table" if refused.code == 162 else "duration limits"
    return f"{bars:,} bars > one message" if bars > MAX_ANSWER_BARS else None


# ------------------------------------------------------------------- the baselines
@dataclass(frozen=True)
class Baseline:
    sent: int  # requests the strategy sends
    refused: int  # of those, refused by IB
    legal: int  # requests once each refused one is re-split at the planner table's spans
    what: str  # the requests, for the notes


def one_day_each(cal: Sequence[Session], bar_size: str) -> Baseline:
    refused = [s for s in cal if refusal(bar_size, "1 D", bars_in([s], bar_size))]
    legal = len(cal) + sum(lower_bound([s], bar_size, TABLE) - 1 for s in refused)
    why = refusal(bar_size, "1 D", 0)
    return Baseline(len(cal), len(refused), legal, f"1 D each{f' (refused: {why})' * bool(why)}")


def year_day_second(cal: Sequence[Session], full: Sequence[Session], bar_size: str) -> Baseline:
    """NautilusTrader's segments (adapters/interactive_brokers/data.py), from the first open to
    the last close: whole 365-day years as one `N Y`, the days left as `N D`, then `N S`."""
    start, end = cal[0].open, cal[-1].close
    years = (end - start).days // 365
    minus_years = end - timedelta(days=365 * years)
    days = (minus_years - start).days
    minus_days = minus_years - timedelta(days=days)
    rest = minus_days - start
    seconds = rest.seconds + (1 if rest.microseconds else 0)
    legal = refused = 0
    what = []
    for lo, hi, duration in (  # the span it is meant to cover, and what it asks IB for
        (minus_years, end, f"{years} Y"),
        (minus_days, minus_years, f"{days} D"),
        (start, minus_days, f"{seconds} S"),
    ):
        if duration.startswith("0 "):
            continue
        why = refusal(bar_size, duration, served(full, hi, duration, bar_size))
        refused += why is not None
        legal += lower_bound(clipped(cal, lo, hi), bar_size, TABLE) if why else 1
        what.append(f"{duration}{f' (refused: {why})' * bool(why)}")
    return Baseline(len(what), refused, legal, " + ".join(what))


# ------------------------------------------------------------------- the table
HEADER = ("shape", "sessions", "bound", "planner", "1 D each", "IB", "made legal", "Y/D/S", "IB",
          "made legal", "goal")  # fmt: skip


def measure(shape: Shape) -> tuple[list[str], bool, list[str]]:
    full = listing(shape.venue, shape.series.use_rth)
    cal = [s for s in full if shape.first <= s.day <= shape.last]
    missing = [s.day for s in cal]
    result = plan(shape.series, missing, cal, table=TABLE, now=NOW, head=None, expiry=shape.expiry)
    fetchable = [s for s in cal if s.day not in result.unavailable]
    bar = shape.series.bar_size
    bound = lower_bound(fetchable, bar, TABLE)
    planner = len(result.requests)
    for r in result.requests:  # the planner's own requests pass the same checks
        end = rules.parse_end(r.end_date_time).when or NOW
        assert refusal(bar, r.duration, served(full, end, r.duration, bar)) is None, r
    daily, nautilus = one_day_each(fetchable, bar), year_day_second(fetchable, full, bar)

    def count(n: int) -> str:
        return f"{n:,} ({n / bound:.2f})"

    def verdict(b: Baseline) -> tuple[str, str]:
        return ("legal", "=") if not b.refused else (f"{b.refused} refused", count(b.legal))

    ok = planner <= GOAL * bound
    row = [shape.name, f"{len(fetchable):,}", f"{bound:,}", count(planner),
           count(daily.sent), *verdict(daily), count(nautilus.sent), *verdict(nautilus),
           "PASS" if ok else "FAIL"]  # fmt: skip
    durations = [r.duration for r in result.requests]
    spans = ", ".join(f"{durations.count(d)} × {d}" for d in dict.fromkeys(durations))
    notes = [f"{shape.name} ({bar}):", f"  planner  {spans}",
             f"  1 D      {daily.what}", f"  Y/D/S    {nautilus.what}"]  # fmt: skip
    return row, ok, notes


def main() -> int:
    measured = [measure(shape) for shape in SHAPES]
    rows = [list(HEADER), *(row for row, _, _ in measured)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    for row in rows:
        cells = zip(row, widths, strict=True)
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells)))
    print(f"\nrequests (ratio to the lower bound); goal: planner ≤ {GOAL} × bound")
    print(f"NOW {NOW:%Y-%m-%d %H:%M} UTC; default table, Max API Backfill Years {TABLE.max_years}")
    for _, _, notes in measured:
        print("\n".join(notes))
    return 0 if all(ok for _, ok, _ in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
