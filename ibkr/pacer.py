"""IB's historical-data pacing as a pure decision: when may this request go, given the log?

Owns the rules (`PacingBudget`), what the rules compare (`RequestKey`), one entry of the shared
request log (`LogEntry`) and the decision over it (`earliest_send`, `slot_free_at`, `used`).
The durable log shared by processes is `ibkr.pacing_log`. May import only the standard library
and `ibfacts`.

The rules are IB's (`ibfacts.pacing`): for bars of 30 s or less and head-timestamp requests, at
most 60 requests in any 10 minutes (BID_ASK counts twice), no identical request within 15 s,
fewer than 6 per contract/exchange/whatToShow within 2 s; for every historical request a cap on
open requests (IB refuses beyond 50 with 322); bars of 1 min and longer only get a soft pace.

The schedule is a queue per lane (small bars, larger bars): a request is never placed before a
request of its lane already in the log. IB judges each request against the ones it accepted
earlier, so slipping a request in before a reservation could overfill that reservation's window;
with the queue, every rule only looks backwards and is monotone in time, so the earliest legal
time is exactly the latest of each rule's earliest time.

One exception keeps a backfill from starving the live service: a `priority` request (a real-time
bar subscription) may use the budget's `reserve`, which no other request may, and does not see
reservations without priority that are not due yet, so it goes before them. Every reservation is
checked again when it comes due and moves back if the rules no longer allow it
(`ibkr.pacing_log`), so one that was overtaken never overfills a window.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ibfacts import pacing
from ibfacts.bars import BAR_SECONDS, is_small_bar

SCALE_ENV = "IBW_PACING_SCALE"  # tests and benchmarks only: compress IB's windows in time
RESERVE_ENV = "IBW_PACING_RESERVE"  # small-bar requests per window kept for real-time bars
MIN_SLACK = 0.05  # seconds: a scaled budget keeps room for the network and the wake-up


@dataclass(frozen=True)
class PacingBudget:
    """The limits the pacer keeps, in seconds. The defaults are IB's, with headroom.

    `window_limit` is two below IB's 60 (as QuantConnect's LEAN does) so that a request this log
    cannot see, from TWS itself or another tool on the login, does not cause a violation; and
    `max_open` is well below IB's 50, so that other tools on the login keep slots too. `slack`
    widens every window: a send may trail its reservation by up to half of it (the wake-up)
    and reach the gateway up to the other half later, and IB's windows still hold.

    `reserve` is the part of `window_limit` only priority requests (the live service's
    real-time bars) may fill: a backfill that used its whole share still leaves them room.
    """

    window: float = pacing.WINDOW_SECONDS  # rolling window for small bars ...
    window_limit: int = pacing.WINDOW_LIMIT - 2  # ... holding at most this many
    identical_window: float = pacing.IDENTICAL_WINDOW_SECONDS  # no identical request within it
    burst_window: float = pacing.BURST_WINDOW_SECONDS  # fewer than `burst_limit` in it ...
    burst_limit: int = pacing.BURST_LIMIT  # ... per contract/exchange/whatToShow
    max_open: int = 20  # open requests across all processes (IB: pacing.MAX_OPEN_REQUESTS)
    lease: float = 600.0  # an unreleased slot frees itself this long after the send
    large_interval: float = 0.0  # soft pace between requests for bars of 1 min and longer
    slack: float = 0.25
    reserve: int = 6  # of `window_limit`, for priority requests only

    def __post_init__(self) -> None:
        if self.window_limit < 2 or self.burst_limit < 2 or self.max_open < 1:
            raise ValueError("window_limit and burst_limit must be ≥ 2 and max_open ≥ 1")
        if not 0 <= self.reserve <= self.window_limit - 2:
            raise ValueError("the reserve must leave at least 2 of window_limit to the others")
        spans = (self.window, self.identical_window, self.burst_window, self.lease)
        if min(*spans, self.large_interval, self.slack) < 0:
            raise ValueError("pacing spans must not be negative")
        if self.lease <= self.slack:
            raise ValueError("the lease must outlast the slack a send may trail its reservation")

    def scaled(self, factor: float) -> PacingBudget:
        """Every time span times `factor` (a gateway whose windows are compressed alike)."""
        return replace(
            self,
            window=self.window * factor,
            identical_window=self.identical_window * factor,
            burst_window=self.burst_window * factor,
            lease=self.lease * factor,
            large_interval=self.large_interval * factor,
            slack=max(MIN_SLACK, self.slack * factor),
        )

    @classmethod
    def from_env(cls) -> PacingBudget:
        """IB's limits, compressed by $IBW_PACING_SCALE when a test sets it, with the reserve
        of $IBW_PACING_RESERVE when set."""
        scale = os.environ.get(SCALE_ENV, "")
        try:
            factor = float(scale) if scale else 1.0
        except ValueError:
            raise ValueError(f"{SCALE_ENV}={scale!r} must be a number such as 0.01") from None
        budget = cls() if factor == 1.0 else cls().scaled(factor)
        reserve = os.environ.get(RESERVE_ENV, "")
        if not reserve:
            return budget
        try:
            return replace(budget, reserve=int(reserve))
        except ValueError:
            raise ValueError(
                f"{RESERVE_ENV}={reserve!r} must be a whole number from 0 to "
                f"{budget.window_limit - 2}, such as 6"
            ) from None

    @property
    def backfill_limit(self) -> int:
        """What requests without priority (backfills, refills) may fill of a window."""
        return self.window_limit - self.reserve

    @property
    def horizon(self) -> float:
        """How far back an entry can still matter to a rule."""
        spans = (self.window, self.identical_window, self.burst_window, self.large_interval)
        return max(spans) + self.slack


@dataclass(frozen=True)
class RequestKey:
    """A historical request as IB's pacing rules see it.

    `bar_size` is IB's string ("5 secs", "1 min", "1 day"); empty for a head-timestamp request,
    which IB paces like a 30-second bar request.
    """

    con_id: int
    exchange: str
    what_to_show: str
    bar_size: str = ""
    end: str = ""
    duration: str = ""
    use_rth: bool = True

    @classmethod
    def head_timestamp(
        cls, con_id: int, exchange: str, what_to_show: str, use_rth: bool = True
    ) -> RequestKey:
        return cls(con_id, exchange, what_to_show, use_rth=use_rth)

    @property
    def small(self) -> bool:
        """Under IB's hard limits: bars of 30 s or less, and every head-timestamp request."""
        if not self.bar_size:
            return True
        bar_size = " ".join(self.bar_size.split())
        if bar_size not in BAR_SECONDS:
            raise ValueError(f"not an IB bar size: {self.bar_size!r}")
        return is_small_bar(bar_size)

    @property
    def weight(self) -> int:
        """Its cost in the small-bar window (BID_ASK counts twice); other requests count 1."""
        return pacing.weight(self.what_to_show) if self.small else 1

    @property
    def key(self) -> str:
        """The 2-second rule's key: contract, exchange and whatToShow."""
        return json.dumps([self.con_id, self.exchange.upper(), self.what_to_show.upper()])

    @property
    def identity(self) -> str:
        """The 15-second rule's key: every parameter of the request."""
        kind = "bars" if self.bar_size else "head"
        return json.dumps([kind, self.key, self.end, self.duration, self.bar_size, self.use_rth])


@dataclass(frozen=True)
class LogEntry:
    """One request in the shared log (sent, or reserved for a time that may be in the future).

    A 162 penalty is an entry with `block` set: no small request until `at` + the window.
    `priority` marks a request that may use the budget's reserve.
    """

    at: float
    weight: int
    key: str
    identity: str
    small: bool
    holds_until: float  # the open slot is held while t < holds_until (release or lease end)
    block: bool = False
    priority: bool = False

    @classmethod
    def of(
        cls, request: RequestKey, at: float, holds_until: float, priority: bool = False
    ) -> LogEntry:
        return cls(
            at,
            request.weight,
            request.key,
            request.identity,
            request.small,
            holds_until,
            priority=priority,
        )

    @classmethod
    def penalty(cls, at: float) -> LogEntry:
        return cls(at, 0, "", "", True, 0.0, block=True)


def earliest_send(
    log: Sequence[LogEntry],
    request: RequestKey,
    now: float,
    budget: PacingBudget,
    priority: bool = False,
) -> float:
    """The earliest time ≥ now at which `request` breaks no rule, given every entry of `log`.

    Every rule is monotone once the request is behind its lane's queue, so the answer is the
    latest of the times at which each rule alone would allow it. O(n log n) in the log's size.
    A priority request may fill the reserve and overtakes reservations without priority that
    are not due yet (they are checked again when they are).
    """
    small = request.small
    lane = sorted((e for e in log if e.small == small and not e.block), key=_at)
    if priority:
        lane = [e for e in lane if e.priority or e.at <= now]
    t = max(now, lane[-1].at if lane else now, slot_free_at(log, now, budget))
    if not small:
        return max(t, lane[-1].at + budget.large_interval) if lane else t
    slack = budget.slack
    for entry in log:
        if entry.block:
            t = max(t, entry.at + budget.window + slack)
    capacity = (budget.window_limit if priority else budget.backfill_limit) - request.weight
    t = max(t, _leaves(((e.at, e.weight) for e in lane), capacity) + budget.window + slack)
    identity, key = request.identity, request.key
    same = [e.at for e in lane if e.identity == identity]
    if same:
        t = max(t, same[-1] + budget.identical_window + slack)
    burst = ((e.at, 1) for e in lane if e.key == key)
    return max(t, _leaves(burst, budget.burst_limit - 2) + budget.burst_window + slack)


def slot_free_at(log: Sequence[LogEntry], now: float, budget: PacingBudget) -> float:
    """The earliest time ≥ now with an open slot, counting reservations as holding theirs.

    Releases a caller may make sooner are not known yet, so this is the time at which enough
    leases end by themselves.
    """
    holders = sorted(e.holds_until for e in log if not e.block and e.holds_until > now)
    excess = len(holders) - (budget.max_open - 1)
    return holders[excess - 1] if excess > 0 else now


def used(log: Sequence[LogEntry], now: float, budget: PacingBudget) -> int:
    """Small-bar budget taken in the window ending at now, reservations for later included."""
    return sum(e.weight for e in log if e.small and not e.block and e.at > now - budget.window)


def _leaves(entries: Iterable[tuple[float, int]], capacity: int) -> float:
    """When enough of the oldest entries (time-ordered) have left for the rest to fit `capacity`.

    Returns the time of the youngest entry that must leave, or -inf if they all fit already.
    """
    ordered = list(entries)
    excess = sum(weight for _, weight in ordered) - capacity
    for at, weight in ordered:
        if excess <= 0:
            break
        excess -= weight
        if excess <= 0:
            return at
    return float("-inf")


def _at(entry: LogEntry) -> float:
    return entry.at
