"""The client-side pacer: each rule, the shared SQLite log, schedules checked against IB's rules.

Time is a fake clock except in the thread and process tests, which use compressed rules and
assert only that the rules hold, never speed. Every schedule goes through an independent checker
(sliding windows written out here) and, where IB's own rules apply, through the embedded
gateway's enforcement, `ibsim.market.pacing.Pacer`.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibkr.pacer import LogEntry, PacingBudget, RequestKey, earliest_send, slot_free_at
from ibkr.pacing_log import Reservation, SharedPacer
from ibsim.config import PacingRules
from ibsim.market.pacing import PacedRequest, Pacer
from shared_state.database import PostgresDatabase
from shared_state.settings import POSTGRES_URL
from tests.kit.processes import ROOT

T0 = 1_720_000_000.0
BUDGET = PacingBudget()
SLACK = BUDGET.slack
SHARE = BUDGET.backfill_limit  # what requests without priority may fill


class FakeClock:
    """A clock that moves only when someone sleeps or a test advances it."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def time(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)


def bars(con_id: int = 1, what: str = "TRADES", end: str = "", bar: str = "5 secs") -> RequestKey:
    return RequestKey(con_id, "SMART", what, bar, end, "1800 S", True)


def logged(
    at: float, request: RequestKey, holds_until: float = 0.0, priority: bool = False
) -> LogEntry:
    return LogEntry.of(request, at, holds_until, priority)


def pacer_at(
    path: Path, clock: FakeClock, budget: PacingBudget = BUDGET, poll: float = 0.5
) -> SharedPacer:
    return SharedPacer(path / "pacing.sqlite", budget, clock.time, clock.sleep, poll)


@pytest.fixture(params=["sqlite", "postgres"])
def make_pacer(request, tmp_path: Path) -> Iterator[Callable[..., SharedPacer]]:
    """Pacers on one log, closed after the test: every rule holds on both backends, an SQLite
    file in a temp dir and a login's rows in a fresh PostgreSQL database."""
    made: list[SharedPacer] = []
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None

    def make(clock: FakeClock, budget: PacingBudget = BUDGET) -> SharedPacer:
        if url is None:
            made.append(pacer_at(tmp_path, clock, budget))
        else:
            database = PostgresDatabase(url, "pacing test")
            made.append(SharedPacer(database, budget, clock.time, clock.sleep, login="test"))
        return made[-1]

    yield make
    for pacer in made:
        pacer.close()


# --------------------------------------------------------------------- the rules, one by one
def test_identical_request_waits_15_seconds():
    log = [logged(T0, bars(end="a"))]
    assert earliest_send(log, bars(end="a"), T0 + 1, BUDGET) == T0 + 15 + SLACK
    assert earliest_send(log, bars(end="b"), T0 + 1, BUDGET) == T0 + 1
    assert earliest_send(log, bars(end="a"), T0 + 20, BUDGET) == T0 + 20


def test_fewer_than_six_per_contract_exchange_and_what_to_show_in_2_seconds():
    log = [logged(T0 + 0.1 * i, bars(end=str(i))) for i in range(5)]
    assert earliest_send(log, bars(end="x"), T0 + 0.5, BUDGET) == T0 + 2 + SLACK
    assert earliest_send(log[:4], bars(end="x"), T0 + 0.5, BUDGET) == T0 + 0.5
    assert earliest_send(log, bars(con_id=2), T0 + 0.5, BUDGET) == T0 + 0.5
    assert earliest_send(log, bars(what="MIDPOINT"), T0 + 0.5, BUDGET) == T0 + 0.5


def test_window_counts_bid_ask_twice_and_head_timestamps():
    log = [logged(T0 + i, bars(con_id=i)) for i in range(SHARE - 1)]
    assert earliest_send(log, bars(con_id=99), T0 + 100, BUDGET) == T0 + 100
    bid_ask = bars(con_id=99, what="BID_ASK")
    assert bid_ask.weight == 2
    assert earliest_send(log, bid_ask, T0 + 100, BUDGET) == T0 + 600 + SLACK
    head = RequestKey.head_timestamp(98, "SMART", "TRADES")
    assert head.small and head.weight == 1
    full = [*log, logged(T0 + 100, head)]
    assert earliest_send(full, bars(con_id=99), T0 + 100, BUDGET) == T0 + 600 + SLACK
    assert earliest_send(full, head, T0 + 100, BUDGET) == T0 + 600 + SLACK


def test_bars_of_a_minute_and_longer_only_get_the_soft_pace():
    full = [logged(T0 + i, bars(con_id=i)) for i in range(SHARE)]
    minute = bars(bar="1 min")
    assert not minute.small and minute.weight == 1
    assert earliest_send(full, minute, T0 + 100, BUDGET) == T0 + 100
    paced = PacingBudget(large_interval=3.0)
    log = [*full, logged(T0 + 99, bars(con_id=5, bar="1 day"))]
    assert earliest_send(log, minute, T0 + 100, paced) == T0 + 102
    assert earliest_send(log, bars(con_id=99), T0 + 100, paced) == T0 + 600 + SLACK


def test_a_request_never_goes_before_its_lane_queue():
    later = [logged(T0 + 50, bars(con_id=7))]
    assert earliest_send(later, bars(con_id=8), T0, BUDGET) == T0 + 50
    assert earliest_send(later, bars(con_id=8, bar="1 hour"), T0, BUDGET) == T0


def test_open_slots_free_when_leases_end():
    budget = PacingBudget(max_open=2)
    log = [
        logged(T0, bars(con_id=1, bar="1 day"), holds_until=T0 + 30),
        logged(T0, bars(con_id=2, bar="1 day"), holds_until=T0 + 10),
    ]
    assert slot_free_at(log, T0 + 1, budget) == T0 + 10
    assert earliest_send(log, bars(con_id=3, bar="1 day"), T0 + 1, budget) == T0 + 10
    assert slot_free_at(log[:1], T0 + 1, budget) == T0 + 1


def test_the_reserve_is_for_priority_requests_only():
    log = [logged(T0 + i, bars(con_id=i)) for i in range(SHARE)]  # a backfill took its share
    assert earliest_send(log, bars(con_id=99), T0 + 100, BUDGET) == T0 + 600 + SLACK
    assert earliest_send(log, bars(con_id=99), T0 + 100, BUDGET, priority=True) == T0 + 100
    reserve = [logged(T0 + 100, bars(con_id=100 + i), priority=True) for i in range(5)]
    full = [*log, *reserve]
    assert earliest_send(full, bars(con_id=99), T0 + 100, BUDGET, priority=True) == T0 + 100
    assert earliest_send([*full, logged(T0 + 100, bars(con_id=98))], bars(con_id=99), T0 + 100,
                         BUDGET, priority=True) == T0 + 600 + SLACK  # fmt: skip


def test_a_priority_request_overtakes_reservations_not_due_yet():
    queued = [logged(T0 + 50, bars(con_id=7)), logged(T0 + 60, bars(con_id=8), priority=True)]
    assert earliest_send(queued[:1], bars(con_id=9), T0, BUDGET, priority=True) == T0
    assert earliest_send(queued, bars(con_id=9), T0, BUDGET, priority=True) == T0 + 60
    assert earliest_send(queued, bars(con_id=9), T0, BUDGET) == T0 + 60


def test_the_reserve_comes_from_the_environment(monkeypatch):
    assert PacingBudget.from_env().reserve == 6
    monkeypatch.setenv("IBW_PACING_RESERVE", "10")
    assert PacingBudget.from_env().reserve == 10
    monkeypatch.setenv("IBW_PACING_RESERVE", "57")
    with pytest.raises(ValueError, match="IBW_PACING_RESERVE"):
        PacingBudget.from_env()


def test_budget_rejects_nonsense():
    with pytest.raises(ValueError):
        PacingBudget(window_limit=1)
    with pytest.raises(ValueError):
        PacingBudget(window_limit=10, reserve=9)
    with pytest.raises(ValueError):
        PacingBudget(slack=-1.0)
    with pytest.raises(ValueError):
        _ = bars(bar="5secs").small


# --------------------------------------------------------------------- the shared log
def test_reservations_are_seen_by_every_pacer_on_the_file(make_pacer):
    clock = FakeClock()
    first, second = make_pacer(clock), make_pacer(clock)
    a = first.reserve(bars(end="a"))
    b = second.reserve(bars(end="a"))
    assert (a.send_at, b.send_at) == (T0, T0 + 15 + SLACK)
    assert second.used() == 2
    assert first.wait(a).confirmed and clock.t == T0
    assert second.wait(b).confirmed and clock.t == T0 + 15 + SLACK


def test_max_open_waits_for_a_release_or_a_lease(make_pacer):
    clock = FakeClock()
    pacer = make_pacer(clock, PacingBudget(max_open=2, lease=30.0))
    a = pacer.wait(pacer.reserve(bars(con_id=1, bar="1 min")))
    b = pacer.wait(pacer.reserve(bars(con_id=2, bar="1 min")))
    pacer.release(a)
    c = pacer.wait(pacer.reserve(bars(con_id=3, bar="1 min")))
    assert clock.t == T0  # a's slot went back at once
    d = pacer.reserve(bars(con_id=4, bar="1 min"))  # b and c hold both slots and never release
    assert d.send_at == clock.t == T0 + 30
    assert b.confirmed and c.confirmed


def test_violation_blocks_small_bars_until_the_window_clears(make_pacer):
    clock = FakeClock()
    pacer = make_pacer(clock)
    early = pacer.reserve(bars(con_id=1))
    pacer.record_violation()
    moved = pacer.wait(early)  # reserved before the 162, so it moves behind the penalty
    assert moved.confirmed and moved.send_at == clock.t == T0 + 600 + SLACK
    pacer.record_violation()
    assert pacer.reserve(bars(con_id=2)).send_at == clock.t + 600 + SLACK
    assert pacer.reserve(bars(con_id=2, bar="1 day")).send_at == clock.t


def test_a_late_reservation_is_rescheduled_not_sent(make_pacer):
    clock = FakeClock()
    pacer = make_pacer(clock)
    late = pacer.reserve(bars(end="a"))
    other = pacer.wait(pacer.reserve(bars(end="b")))
    clock.t += 5
    again = pacer.confirm(late)
    assert not again.confirmed and again.send_at == clock.t and again.id == late.id
    assert pacer.wait(again).confirmed
    assert len(pacer.log()) == 2 and other.confirmed


def test_live_bars_overtake_a_backfill_that_used_its_share(make_pacer):
    clock = FakeClock()
    pacer = make_pacer(clock, PacingBudget(window_limit=5, reserve=2))
    for i in range(3):  # the backfill's share of 5 - 2
        with pacer.slot(bars(con_id=i)):
            clock.t += 1
    backfill = pacer.reserve(bars(con_id=10))
    assert backfill.send_at == T0 + 600 + SLACK
    clock.t = T0 + 10
    live = [pacer.wait(pacer.reserve(bars(con_id=20 + i), priority=True)) for i in range(2)]
    assert all(r.confirmed for r in live) and clock.t == T0 + 10
    third = pacer.reserve(bars(con_id=30), priority=True)  # the reserve is spent too
    assert third.send_at == T0 + 600 + SLACK
    pacer.release(third)
    moved = pacer.wait(backfill)  # the live bars are in its window now: it goes once two left
    assert moved.confirmed and moved.id == backfill.id and clock.t == T0 + 602 + SLACK


# The log's first layout, before the reserve's priority and PostgreSQL's login column.
FIRST_LAYOUT = """CREATE TABLE sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, weight INTEGER NOT NULL,
    key TEXT NOT NULL, identity TEXT NOT NULL, small INTEGER NOT NULL,
    holds_until REAL NOT NULL, block INTEGER NOT NULL, sent INTEGER NOT NULL DEFAULT 0)"""


def test_an_old_log_gains_the_new_columns_and_keeps_its_entries(tmp_path: Path):
    import sqlite3

    path = tmp_path / "pacing.sqlite"
    now = time.time()
    with sqlite3.connect(path) as db:
        db.execute(FIRST_LAYOUT)
        db.execute(
            "INSERT INTO sends (at, weight, key, identity, small, holds_until, block, sent) "
            "VALUES (?, 1, 'k', 'i', 1, ?, 0, 1)",
            (now, now),
        )
    with SharedPacer(path) as pacer:
        assert [e.key for e in pacer.log()] == ["k"]  # still counts against the rules
        assert pacer.wait(pacer.reserve(bars(), priority=True)).confirmed
        assert [e.priority for e in pacer.log()] == [False, True]


def test_slot_releases_on_error_and_forgets_what_was_never_sent(make_pacer):
    clock = FakeClock()
    pacer = make_pacer(clock, PacingBudget(max_open=1))
    with pytest.raises(RuntimeError), pacer.slot(bars(end="a")):
        raise RuntimeError("the request failed")
    assert slot_free_at(pacer.log(), clock.t, pacer.budget) == clock.t
    assert pacer.used() == 1  # it was sent, so it still counts
    unsent = pacer.reserve(bars(end="b"))
    pacer.release(unsent)
    assert pacer.used() == 1


def test_old_entries_are_pruned(make_pacer):
    clock = FakeClock()
    pacer = make_pacer(clock)
    with pacer.slot(bars()):
        pass
    clock.t += BUDGET.horizon + 1
    assert pacer.log() == [] and pacer.used() == 0


def test_one_file_per_login_without_odd_characters(tmp_path: Path):
    with SharedPacer.for_login(tmp_path, "127.0.0.1", 4002, "DU123456") as pacer:
        assert pacer.path == tmp_path / "pacing" / "127.0.0.1_4002_DU123456.sqlite"
    with SharedPacer.for_login(tmp_path, "gw/host", 7497, "me@desk 1") as odd:
        assert odd.path.name == "gw-host_7497_me-desk-1.sqlite"


# --------------------------------------------------------------------- checking schedules
@dataclass(frozen=True)
class Sent:
    at: float
    request: RequestKey
    open_until: float  # when its slot ended: released, or the lease ran out


def broken_rules(
    sends: Sequence[Sent],
    budget: PacingBudget,
    penalties: Iterable[float] = (),
    tolerance: float = 0.0,
) -> list[str]:
    """Every rule the schedule breaks; `tolerance` only widens the windows (stricter).

    Requests sent at the same instant all count against each other, whatever order IB sees.
    Open slots are checked exactly: a send must come after the other requests' answers.
    """
    small = sorted((s for s in sends if s.request.small), key=lambda s: s.at)
    window, limit = budget.window + tolerance, budget.window_limit
    problems = [f"window full at {at}" for at in _crowded(small, lambda s: "", window, limit, True)]
    burst, most = budget.burst_window + tolerance, budget.burst_limit - 1
    problems += [
        f"burst at {at}" for at in _crowded(small, lambda s: s.request.key, burst, most, False)
    ]
    last: dict[str, float] = {}
    for s in small:
        if s.at - last.get(s.request.identity, float("-inf")) < budget.identical_window + tolerance:
            problems.append(f"identical request at {s.at}")
        last[s.request.identity] = s.at
    problems += [
        f"small bars sent during a penalty at {s.at}"
        for s in small
        if any(v < s.at < v + budget.window for v in penalties)  # sent after the 162 came
    ]
    held: list[float] = []
    for s in sorted(sends, key=lambda s: s.at):
        while held and held[0] <= s.at:
            heapq.heappop(held)
        heapq.heappush(held, s.open_until)
        if len(held) > budget.max_open:
            problems.append(f"{len(held)} open at {s.at}")
    return problems


def _crowded(
    ordered: Sequence[Sent], group: Callable[[Sent], str], span: float, limit: int, weighed: bool
) -> list[float]:
    """Send times at which one group's count (or weight) in (t - span, t] exceeds `limit`."""
    times: dict[str, list[float]] = defaultdict(list)
    totals: dict[str, list[int]] = defaultdict(lambda: [0])
    for s in ordered:
        times[group(s)].append(s.at)
        totals[group(s)].append(totals[group(s)][-1] + (s.request.weight if weighed else 1))
    crowded = []
    for name, at in times.items():
        for t in at:
            lo, hi = bisect.bisect_right(at, t - span), bisect.bisect_right(at, t)
            if totals[name][hi] - totals[name][lo] > limit:
                crowded.append(t)
    return crowded


def backfill_overdrawn(
    sends: dict[int, tuple[float, RequestKey]], prioritised: set[int], budget: PacingBudget
) -> list[float]:
    """Times a request without priority went while the window, counting the requests sent
    before it (`sends` in the order they went), held more than the backfill's share."""
    window: deque[tuple[float, int]] = deque()
    total, overdrawn = 0, []
    for rid, (at, request) in sends.items():
        if not request.small:
            continue
        while window and window[0][0] <= at - budget.window:
            total -= window.popleft()[1]
        window.append((at, request.weight))
        total += request.weight
        if rid not in prioritised and total > budget.backfill_limit:
            overdrawn.append(at)
    return overdrawn


def gateway_refusals(sends: Sequence[Sent], rules: PacingRules) -> list[float]:
    """Feed the small-bar sends in time order to the embedded gateway's enforcement."""
    gateway = Pacer(rules)
    refused = []
    for s in sorted((s for s in sends if s.request.small), key=lambda s: s.at):
        paced = PacedRequest(s.at, (s.request.key,), (s.request.identity,), s.request.weight)
        if not gateway.admit(paced):
            refused.append(s.at)
    return refused


def test_the_checkers_catch_a_bad_schedule():
    twins = [Sent(T0, bars(), T0 + 1), Sent(T0 + 5, bars(), T0 + 6)]
    assert broken_rules(twins, BUDGET) == [f"identical request at {T0 + 5}"]
    assert gateway_refusals(twins, PacingRules()) == [T0 + 5]
    burst = [Sent(T0 + 0.1 * i, bars(end=str(i)), T0) for i in range(6)]
    assert broken_rules(burst, BUDGET) == [f"burst at {T0 + 0.5}"]
    crowd = [Sent(T0 + i, bars(con_id=i), T0) for i in range(BUDGET.window_limit + 1)]
    assert broken_rules(crowd, BUDGET) == [f"window full at {T0 + BUDGET.window_limit}"]
    held = [Sent(T0, bars(con_id=i, bar="1 day"), T0 + 9) for i in range(BUDGET.max_open + 1)]
    assert broken_rules(held, BUDGET) == [f"{BUDGET.max_open + 1} open at {T0}"]
    assert broken_rules(twins[:1], BUDGET, penalties=[T0 - 1]) == [
        f"small bars sent during a penalty at {T0}"
    ]


# --------------------------------------------------------------------- several processes
requests = st.builds(
    RequestKey,
    con_id=st.integers(1, 3),
    exchange=st.just("SMART"),
    what_to_show=st.sampled_from(["TRADES", "BID_ASK", "MIDPOINT"]),
    bar_size=st.sampled_from(["", "5 secs", "30 secs", "1 min", "1 day"]),
    end=st.sampled_from(["", "20240102-00:00:00"]),
    duration=st.just("1800 S"),
    use_rth=st.booleans(),
)
steps = st.lists(
    st.tuples(
        st.integers(0, 3),  # which process
        st.sampled_from(
            ["reserve", "reserve", "send", "send", "hold", "release", "advance", "162"]
        ),
        requests,
        st.integers(1, 40),  # how many to reserve or send
        st.floats(0.0, 40.0),  # seconds to advance
        st.booleans(),  # reserved with priority (the live service's real-time bars)
    ),
    max_size=60,
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.sampled_from([3, 30]))
def test_interleaved_processes_never_break_a_rule(script, max_open):
    """Four pacers on one file, driven in a random interleaving on one fake clock.

    A batch reserves variants of one request: one key (the 2-second rule), every eighth one
    identical (the 15-second rule). A reservation waited for late is moved, not sent. Batches
    with priority overtake the others and may use the reserve.
    """
    budget = PacingBudget(max_open=max_open, lease=60.0, large_interval=1.0, reserve=20)
    clock = FakeClock()
    sends: dict[int, tuple[float, RequestKey]] = {}
    released: dict[int, float] = {}
    prioritised: set[int] = set()
    penalties: list[float] = []
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        pacers = [
            stack.enter_context(pacer_at(Path(folder), clock, budget, poll=30.0)) for _ in range(4)
        ]
        pending: list[list[Reservation]] = [[] for _ in pacers]
        holding: list[list[Reservation]] = [[] for _ in pacers]

        def release(proc: int, reservation: Reservation) -> None:
            pacers[proc].release(reservation)
            released[reservation.id] = clock.t

        def send(proc: int, hold: bool) -> None:
            reservation = pacers[proc].wait(pending[proc].pop(0))
            sends[reservation.id] = (clock.t, reservation.request)
            if hold:
                holding[proc].append(reservation)
            else:
                release(proc, reservation)

        for proc, action, request, count, seconds, priority in script:
            if action == "reserve":
                for k in range(count):
                    variant = replace(request, duration=f"{1800 * (1 + k % 8)} S")
                    pending[proc].append(pacers[proc].reserve(variant, priority))
                    if priority:
                        prioritised.add(pending[proc][-1].id)
            elif action in ("send", "hold"):
                for _ in range(min(count, len(pending[proc]))):
                    send(proc, hold=action == "hold")
            elif action == "release" and holding[proc]:
                release(proc, holding[proc].pop(0))
            elif action == "advance":
                clock.t += seconds
            elif action == "162":
                pacers[proc].record_violation()
                penalties.append(clock.t)
        for proc in range(len(pacers)):
            while pending[proc]:
                send(proc, hold=False)
    schedule = [
        Sent(at, request, min(released.get(rid, float("inf")), at + budget.lease))
        for rid, (at, request) in sends.items()
    ]
    assert broken_rules(schedule, budget, penalties) == []
    assert gateway_refusals(schedule, PacingRules()) == []
    assert backfill_overdrawn(sends, prioritised, budget) == []
    large = sorted(s.at for s in schedule if not s.request.small)
    gaps = [b - a for a, b in itertools.pairwise(large)]
    assert all(g >= budget.large_interval - budget.slack / 2 for g in gaps)


def test_utilisation_of_a_long_stream_of_small_bars(make_pacer):
    """Distinct small-bar requests one after another: ≥ 95 % of IB's 60 less the reserve."""
    clock = FakeClock()
    pacer = make_pacer(clock)
    schedule = []
    for i in range(700):
        with pacer.slot(bars(con_id=i % 40, end=str(i))) as reservation:
            schedule.append(Sent(clock.t, reservation.request, clock.t))
    windows = 10
    in_horizon = [s for s in schedule if s.at < T0 + windows * 600]
    assert len(schedule) > len(in_horizon)  # the stream outlasts the horizon
    utilisation = len(in_horizon) / ((60 - BUDGET.reserve) * windows)
    assert utilisation >= 0.95, utilisation
    assert broken_rules(schedule, BUDGET) == []
    assert gateway_refusals(schedule, PacingRules()) == []


# --------------------------------------------------------------------- real processes
WORKER = """
import json, random, sys, time
from pathlib import Path
from ibkr.pacer import PacingBudget, RequestKey
from ibkr.pacing_log import Reservation, SharedPacer
from shared_state.database import PostgresDatabase
from shared_state.settings import POSTGRES_URL

home, out, seed, count, budget = sys.argv[1:6]
rng = random.Random(int(seed))
budget = PacingBudget(**json.loads(budget))
pacer = SharedPacer.for_login(Path(home), "127.0.0.1", 4002, "DU1", budget=budget, poll=0.01)
with pacer, open(out, "w") as record:
    for _ in range(int(count)):
        request = RequestKey(
            rng.choice([1, 2]), "SMART", rng.choice(["TRADES", "BID_ASK"]),
            rng.choice(["5 secs", "5 secs", "", "1 min"]), rng.choice(["", "20240102-00:00:00"]),
            "1800 S",
        )
        with pacer.slot(request):
            sent = time.time()
            time.sleep(rng.uniform(0.0, 0.02))
            done = time.time()  # the answer is in: the slot is released after this
        record.write(json.dumps({"at": sent, "done": done, "request": vars(request)}))
        record.write("\\n")
"""
COMPRESSED = PacingBudget(
    window=1.0,
    window_limit=10,
    identical_window=0.3,
    burst_window=0.2,
    burst_limit=6,
    max_open=2,
    lease=5.0,
    slack=0.05,
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_three_processes_share_one_login(tmp_path: Path, request, backend):
    """Three processes on one login (its SQLite file, or its rows in PostgreSQL as two machines
    would share them) never break a rule between them."""
    env = dict(os.environ)
    env.pop(POSTGRES_URL, None)
    if backend == "postgres":
        env[POSTGRES_URL] = request.getfixturevalue("postgres_url")
    budget = json.dumps(asdict(COMPRESSED))
    outputs = [tmp_path / f"sends-{i}.jsonl" for i in range(3)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), str(out), str(i), "14", budget],
            cwd=ROOT,
            env=env,
        )
        for i, out in enumerate(outputs)
    ]
    try:
        codes = [worker.wait(timeout=45) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=5)
    assert codes == [0, 0, 0]
    schedule = [
        Sent(row["at"], RequestKey(**row["request"]), row["done"])
        for out in outputs
        for row in map(json.loads, out.read_text().splitlines())
    ]
    assert len(schedule) == 42
    assert broken_rules(schedule, COMPRESSED, tolerance=0.01) == []
    rules = PacingRules(
        window=1.0, window_limit=10, identical_window=0.3, burst_window=0.2, burst_limit=6
    )
    assert gateway_refusals(schedule, rules) == []


def test_threads_share_one_pacer(tmp_path: Path):
    """One SharedPacer used by several threads at once (its lock, then the file's)."""
    sends: list[Sent] = []
    with SharedPacer(tmp_path / "pacing.sqlite", COMPRESSED, poll=0.01) as pacer:

        def work(con_id: int) -> None:
            for i in range(6):
                with pacer.slot(bars(con_id=con_id % 2, end=str(i % 3))):
                    sent = time.time()
                    time.sleep(0.005)
                    sends.append(Sent(sent, bars(con_id=con_id % 2, end=str(i % 3)), time.time()))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
    assert len(sends) == 18
    assert broken_rules(sends, COMPRESSED, tolerance=0.01) == []
