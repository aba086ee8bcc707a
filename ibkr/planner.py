"""The request planner: a series' missing sessions -> the fewest legal historical-data requests.

Owns the step from gaps (what the coverage ledger lacks) to IB requests, and the estimates that
`ibw plan` prints. Pure: no I/O, no clock (`now` is an argument), no calendar (the series'
expected sessions are an argument), no pacing (the pacer decides when each request goes).

How (IB's documentation of historical bar requests):
- Durations count trading time: `N S` is N trading seconds and `N D` N sessions back from the
  end, so the planner lays the expected sessions end to end on a trading-time axis (seconds for
  bars of 30 s or less, whole sessions otherwise) and works there.
- Greedy from the newest missing point: each request ends there and reaches back the table's
  span; a window whose old end lands on covered sessions is trimmed back to the oldest missing
  point in it. For windows of a fixed length on a line this greedy needs the fewest windows, so
  a contiguous gap takes exactly ceil(trading time / span) requests, and covered sessions are
  fetched only where a request passes over them to reach an older gap (never at an edge).
- `N Y` is calendar time and cannot be trimmed to a session, so a Y request is planned only
  when its window starts in missing (or unlisted) time; otherwise exact D requests are used.
- Every end is a UTC instant in IB's dash form; CONTFUT and ADJUSTED_LAST take no end date, so
  they get one request ending now that reaches back as far as the table allows.
- Sessions IB cannot serve (not closed yet, before the head timestamp, after expiry, small bars
  older than six months, expired options) are reported with a reason instead of requested.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import NamedTuple

from ibfacts import pacing
from ibfacts.bars import BAR_SECONDS, MIN_SECONDS, UNIT_LIMITS, is_small_bar
from ibfacts.history import NO_END_DATE_SEC_TYPES, NO_END_DATE_WHAT, NO_EXPIRED_HISTORY
from ibkr.durations import EXPIRED_FUTURE_MAX_AGE, SMALL_BAR_MAX_AGE, DurationTable, Span


class Session(NamedTuple):
    """One expected session: its date and its open and close as aware UTC datetimes."""

    day: date
    open: datetime
    close: datetime


@dataclass(frozen=True)
class Series:
    """What one coverage-ledger series asks IB for."""

    con_id: int
    sec_type: str
    exchange: str
    bar_size: str
    what_to_show: str
    use_rth: bool

    @property
    def end_date_allowed(self) -> bool:
        return self.sec_type not in NO_END_DATE_SEC_TYPES and (
            self.what_to_show not in NO_END_DATE_WHAT
        )


class Reason(StrEnum):
    """Why a missing session is not requested (one sentence each, for the CLI and Dagster)."""

    NOT_CLOSED = "the session has not closed yet"
    BEFORE_HEAD = "the session ends before IB's earliest data (head timestamp)"
    AFTER_EXPIRY = "the session is after the contract's expiry"
    EXPIRED_NO_HISTORY = "IB keeps no history of expired options, FOPs and warrants"
    EXPIRED_TOO_OLD = "IB keeps expired futures for two years after expiry only"
    SMALL_BARS_TOO_OLD = "IB serves bars of 30 s or less for the last six months only"
    BEYOND_ONE_REQUEST = (
        "older than one request ending now can reach (no end date is allowed for this series)"
    )


@dataclass(frozen=True)
class PlannedRequest:
    """One reqHistoricalData call, and the sessions it completes."""

    end_date_time: str  # `yyyymmdd-hh:mm:ss` in UTC, or "" for now
    duration: str
    bar_size: str
    what_to_show: str
    use_rth: bool
    covers: tuple[date, ...]  # whole or in part: a long small-bar session takes several
    format_date: int = 2  # epoch seconds: nothing depends on the gateway's time zone

    @property
    def pacing_weight(self) -> int:
        """Its cost in IB's small-bar budget: BID_ASK counts twice, bars of 1 min or more 0."""
        if not is_small_bar(self.bar_size):
            return 0
        return pacing.weight(self.what_to_show)


@dataclass(frozen=True)
class Plan:
    """The requests, newest first, and the missing sessions that cannot be fetched."""

    requests: tuple[PlannedRequest, ...]
    unavailable: Mapping[date, Reason]


@dataclass(frozen=True)
class _Calendar:
    """Sessions as epoch seconds, checked for order once."""

    days: list[date]
    opens: list[int]
    closes: list[int]

    @classmethod
    def of(cls, sessions: Iterable[Sequence]) -> _Calendar:
        days, opens, closes = [], [], []
        for day, opened, closed in sessions:
            if opened.tzinfo is None or closed.tzinfo is None:
                raise ValueError(f"session {day}: open and close must be aware (UTC) datetimes")
            o, c = int(opened.timestamp()), int(closed.timestamp())
            if o >= c or (closes and (o < closes[-1] or day <= days[-1])):
                raise ValueError(f"session {day} is empty or out of order")
            days.append(day)
            opens.append(o)
            closes.append(c)
        return cls(days, opens, closes)

    def index(self, day: date) -> int:
        i = bisect.bisect_left(self.days, day)
        if i == len(self.days) or self.days[i] != day:
            raise ValueError(f"missing session {day} is not among the expected sessions")
        return i


def plan(
    series: Series,
    missing: Iterable[date],
    sessions: Sequence[Sequence],
    *,
    table: DurationTable,
    now: datetime,
    head: datetime | None = None,
    expiry: date | None = None,
) -> Plan:
    """The fewest legal requests that fetch every fetchable missing session of `series`.

    `sessions` are the series' expected sessions in order, all of them between the first and the
    last (RTH or full hours, as `series.use_rth` says; the ledger's calendar gives them), as
    (date, open, close) in UTC; `missing` is the subset the ledger lacks. For a series that takes
    no end date the sessions must run up to `now`, since its request counts back from now."""
    if now.tzinfo is None or (head is not None and head.tzinfo is None):
        raise ValueError("now and head must be aware (UTC) datetimes")
    if series.bar_size not in BAR_SECONDS:
        raise ValueError(f"{series.bar_size!r} is not a bar size IB accepts")
    if series.what_to_show == "ADJUSTED_LAST" and series.bar_size in ("1 week", "1 month"):
        raise ValueError("IB serves ADJUSTED_LAST only for bars of a day or less")
    cal = _Calendar.of(sessions)
    wanted = sorted({cal.index(day) for day in missing})
    unavailable: dict[date, Reason] = {}
    todo = []
    for k in wanted:
        reason = _unavailable(series, cal, k, now, head, expiry)
        if reason is None:
            todo.append(k)
        else:
            unavailable[cal.days[k]] = reason
    span = table.span(series.bar_size)
    if not todo:
        pieces = []
    elif not series.end_date_allowed:
        pieces, beyond = _plan_from_now(cal, todo, span, int(now.timestamp()))
        unavailable.update({cal.days[k]: Reason.BEYOND_ONE_REQUEST for k in beyond})
    elif span.unit == "Y":
        pieces = _plan_years(cal, todo, set(wanted), span.count)
    else:
        pieces = _plan_on_axis(cal, todo, span)
    requests = tuple(
        PlannedRequest(
            "" if end is None else _dash_utc(end),
            str(duration),
            series.bar_size,
            series.what_to_show,
            series.use_rth,
            tuple(cal.days[first : last + 1]),
        )
        for end, duration, first, last in pieces
    )
    return Plan(requests, dict(sorted(unavailable.items())))


# (end epoch or None for now, duration, first and last session index it covers)
_Piece = tuple[int | None, Span, int, int]


def _unavailable(
    series: Series,
    cal: _Calendar,
    k: int,
    now: datetime,
    head: datetime | None,
    expiry: date | None,
) -> Reason | None:
    expired = expiry is not None and expiry < now.date()
    if expired and series.sec_type in NO_EXPIRED_HISTORY:
        return Reason.EXPIRED_NO_HISTORY
    if expired and series.sec_type == "FUT" and now.date() - expiry > EXPIRED_FUTURE_MAX_AGE:
        return Reason.EXPIRED_TOO_OLD
    if expiry is not None and cal.days[k] > expiry:
        return Reason.AFTER_EXPIRY
    if cal.closes[k] > now.timestamp():
        return Reason.NOT_CLOSED
    if head is not None and cal.closes[k] <= head.timestamp():
        return Reason.BEFORE_HEAD
    if is_small_bar(series.bar_size) and cal.opens[k] < (now - SMALL_BAR_MAX_AGE).timestamp():
        return Reason.SMALL_BARS_TOO_OLD
    return None


# ------------------------------------------------------------------- S and D: a trading axis
def _plan_on_axis(cal: _Calendar, todo: list[int], span: Span) -> list[_Piece]:
    """Lay sessions end to end (seconds of trading for S, one unit each for D) and cover the
    missing runs greedily from the newest end."""
    seconds = span.unit == "S"
    lengths = [c - o for o, c in zip(cal.opens, cal.closes, strict=True)] if seconds else None
    starts = [0, *itertools.accumulate(lengths or [1] * len(cal.days))]
    runs = []  # [lo, hi) on the axis of each run of adjacent missing sessions
    for k in todo:
        if runs and runs[-1][1] == starts[k]:
            runs[-1][1] = starts[k + 1]
        else:
            runs.append([starts[k], starts[k + 1]])
    pieces = []
    for lo, hi in _greedy(runs, span.count, MIN_SECONDS if seconds else 1):
        first = bisect.bisect_right(starts, lo) - 1  # sessions overlapping (lo, hi)
        last = bisect.bisect_left(starts, hi) - 1
        end = cal.closes[last] - (starts[last + 1] - hi)  # inside `last` when S ends mid-session
        length = max(hi - lo, MIN_SECONDS) if seconds else hi - lo  # < 30 S: a lone sliver
        pieces.append((end, Span(length, span.unit), first, last))
    return pieces


def _greedy(runs: list[list[int]], width: int, minimum: int) -> list[tuple[int, int]]:
    """The fewest windows of at most `width` covering `runs` (sorted, disjoint [lo, hi)), as
    (start, end), newest first. Each window ends at the newest uncovered point; its start is
    trimmed to the oldest missing point it holds, and it leaves no sliver under `minimum`."""
    pieces: list[tuple[int, int]] = []
    r = len(runs) - 1
    end = runs[r][1] if runs else 0
    while r >= 0:
        floor = end - width
        first = r
        while first > 0 and runs[first - 1][1] > floor:
            first -= 1
        lo, hi = runs[first]
        start = max(floor, lo)
        if 0 < start - lo < minimum and hi > lo + minimum and end - lo >= 2 * minimum:
            start = lo + minimum  # the next request takes exactly the legal minimum
        pieces.append((start, end))
        if start > lo:
            end, r = start, first
        else:
            r = first - 1
            end = runs[r][1] if r >= 0 else 0
    return pieces


# ------------------------------------------------------------------- Y: calendar years
def _plan_years(cal: _Calendar, todo: list[int], missing: set[int], years: int) -> list[_Piece]:
    """Newest first: each request is the longer-reaching of an exact `n D` (n ≤ 365) and the
    shortest `m Y` (2 ≤ m ≤ years) that reaches furthest without touching a session the ledger
    holds. A Y window may run into unlisted time and into missing sessions that are unavailable
    or that another request completes (bars the caller drops), never into covered ones."""
    holes = [0, *itertools.accumulate(k in missing for k in range(len(cal.days)))]
    pieces = []
    pos = len(todo) - 1
    while pos >= 0:
        i = todo[pos]
        first = todo[bisect.bisect_left(todo, i - UNIT_LIMITS["D"] + 1)]
        best: tuple[int, Span] = (first, Span(i - first + 1, "D"))
        for m in range(2, years + 1):
            start = _years_back(cal.closes[i], m)
            k = bisect.bisect_left(cal.opens, start)
            touched = k - 1 if k > 0 and cal.closes[k - 1] > start else k
            j = todo[bisect.bisect_left(todo, k)]  # the oldest session it can complete
            if j < best[0] and holes[j] - holes[touched] == j - touched:
                best = (j, Span(m, "Y"))
        first, span = best
        pieces.append((cal.closes[i], span, first, i))
        pos = bisect.bisect_left(todo, first) - 1
    return pieces


def _years_back(epoch: int, years: int) -> int:
    """The same instant `years` calendar years earlier (29 Feb -> 28 Feb), as IB counts Y."""
    when = datetime.fromtimestamp(epoch, UTC)
    day = 28 if (when.month, when.day) == (2, 29) else when.day
    return int(when.replace(year=when.year - years, day=day).timestamp())


# ------------------------------------------------------------------- no end date
def _plan_from_now(
    cal: _Calendar, todo: list[int], span: Span, now: int
) -> tuple[list[_Piece], list[int]]:
    """One request ending now, reaching back to the oldest missing session if the table's span
    allows; the missing sessions it cannot reach are returned apart. Covered sessions between
    the oldest missing one and now are fetched again: IB allows no other end."""
    newest = bisect.bisect_left(cal.opens, now) - 1  # the last session begun (maybe still open)
    if span.unit == "S":
        reach, used = newest + 1, 0
        while reach > 0 and used + min(cal.closes[reach - 1], now) - cal.opens[reach - 1] <= (
            span.count
        ):
            reach -= 1
            used += min(cal.closes[reach], now) - cal.opens[reach]
    elif span.unit == "D":
        reach = newest - span.count + 1
    else:
        limit = _years_back(now, span.count)
        reach = min(newest - UNIT_LIMITS["D"] + 1, bisect.bisect_left(cal.opens, limit))
    cut = bisect.bisect_left(todo, reach)
    beyond, todo = todo[:cut], todo[cut:]
    if not todo:
        return [], beyond
    first = todo[0]
    last_closed = bisect.bisect_right(cal.closes, now) - 1
    if span.unit == "S":
        trading = sum(min(cal.closes[k], now) - cal.opens[k] for k in range(first, newest + 1))
        duration = Span(max(MIN_SECONDS, min(trading, span.count)), "S")
    elif span.unit == "D" or newest - first < UNIT_LIMITS["D"]:
        duration = Span(newest - first + 1, "D")
    else:
        m = next(m for m in range(2, span.count + 1) if _years_back(now, m) <= cal.opens[first])
        duration = Span(m, "Y")
    return [(None, duration, first, last_closed)], beyond


# ------------------------------------------------------------------- bounds and estimates
def lower_bound(trading_sessions: Sequence[Sequence], bar_size: str, table: DurationTable) -> int:
    """The fewest requests any planner could use: trading time ÷ the table's longest span
    (seconds for S, sessions for D, calendar years for Y: the fewest N-year spans from
    the last close that reach the first open). The benchmark's yardstick."""
    cal = _Calendar.of(trading_sessions)
    if not cal.days:
        return 0
    span = table.span(bar_size)
    if span.unit == "S":
        trading = sum(c - o for o, c in zip(cal.opens, cal.closes, strict=True))
        return math.ceil(trading / span.count)
    if span.unit == "D":
        return math.ceil(len(cal.days) / span.count)
    return next(
        b for b in itertools.count(1) if _years_back(cal.closes[-1], b * span.count) <= cal.opens[0]
    )


def estimated_minutes(
    weight: int, *, budget: int = pacing.WINDOW_LIMIT, window_s: float = pacing.WINDOW_SECONDS
) -> float:
    """Minutes to send `weight` small-bar units at the sustained pacing budget (IB: 60 per
    10 min; BID_ASK counts 2), the rate a long backfill settles to."""
    return weight / budget * window_s / 60


def describe_cost(
    requests: Sequence[PlannedRequest],
    *,
    budget: int = pacing.WINDOW_LIMIT,
    window_s: float = pacing.WINDOW_SECONDS,
) -> str:
    """`ibw plan`'s one line, e.g. '412 requests ≈ 69 min at 60 / 10 min'."""
    count = f"{len(requests)} request{'' if len(requests) == 1 else 's'}"
    weight = sum(r.pacing_weight for r in requests)
    if weight == 0:
        return f"{count} (bars of 1 min or more: no hard pacing budget)"
    minutes = estimated_minutes(weight, budget=budget, window_s=window_s)
    return f"{count} ≈ {round(minutes)} min at {budget} / {window_s / 60:g} min"


def _dash_utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%d-%H:%M:%S")
