"""The request planner and its duration table: unit tests, and property tests on real XNYS
sessions cross-checked against the embedded gateway's own rules (ibsim, tests only)."""

from __future__ import annotations

import bisect
import functools
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibkr.durations import (
    BAR_SECONDS,
    DurationTable,
    Span,
    is_small_bar,
    refusal_halves,
)
from ibkr.planner import (
    Plan,
    Reason,
    Series,
    Session,
    describe_cost,
    estimated_minutes,
    lower_bound,
    plan,
)
from ibsim.handlers.historical import _calendar_back
from ibsim.market import rules
from ibsim.market.bars import window_start_by_sessions, window_start_by_trading_seconds
from ibsim.market.calendars import sessions as venue_sessions

TABLE = DurationTable.default()
NOW = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)


@functools.cache
def listing(venue: str, rth: bool) -> list[Session]:
    table = venue_sessions(venue, rth)
    return [
        Session(d.astype(date), datetime.fromtimestamp(o, UTC), datetime.fromtimestamp(c, UTC))
        for d, o, c in zip(table.dates, table.opens.tolist(), table.closes.tolist(), strict=True)
    ]


RTH, FULL = listing("us_equity", True), listing("us_equity", False)
VENUES = ["us_equity", "cme_globex", "fx_idealpro"]


def between(cal: list[Session], start: date, end: date) -> list[Session]:
    return [s for s in cal if start <= s.day <= end]


def series(bar_size: str, what: str = "TRADES", sec_type: str = "STK", rth: bool = True):
    return Series(265598, sec_type, "SMART", bar_size, what, rth)


def run(bar_size, missing, cal, **kw) -> Plan:
    kw.setdefault("now", NOW)
    kw.setdefault("table", TABLE)
    return plan(kw.pop("series", series(bar_size)), missing, cal, **kw)


# ------------------------------------------------------------------- the duration table
@pytest.mark.parametrize("bar_size", list(BAR_SECONDS))
def test_default_spans_pass_the_gateway_checks(bar_size):
    span = TABLE.span(bar_size)
    duration = rules.parse_duration(str(span))
    rules.check_duration_limits(duration, TABLE.max_years)
    rules.check_step(rules.bar_kind(bar_size), duration)
    assert (span.unit == "S") == is_small_bar(bar_size)


def test_halving_floors_and_persistence():
    table = TABLE
    for _ in range(20):
        table = table.halve("5 secs").halve("1 min").halve("1 day").halve("1 hour")
    assert table.span("5 secs") == Span(30, "S")
    assert table.span("1 min") == Span(1, "D")
    assert table.span("1 day") == Span(1, "D")
    assert TABLE.halve("1 hour").span("1 hour") == Span(252, "D")  # 2 Y -> a year of sessions
    assert TABLE.halve("1 day").span("1 day") == Span(15, "Y")
    halvings = [TABLE]
    for _ in range(5):
        halvings.append(halvings[-1].halve("5 secs"))
    assert [str(t.span("5 secs")) for t in halvings] == [
        "3600 S", "1800 S", "900 S", "450 S", "225 S", "110 S",  # whole numbers of bars
    ]  # fmt: skip
    assert DurationTable.from_strings(table.as_strings()) == table
    assert DurationTable.from_strings({"1 min": "5 D"}).span("1 min") == Span(5, "D")
    assert DurationTable.default(max_years=1).span("1 day") == Span(365, "D")
    assert DurationTable.default(max_years=5).span("1 day") == Span(5, "Y")
    with pytest.raises(ValueError):
        DurationTable.from_strings({"1 secs": "1 D"})
    with pytest.raises(ValueError):
        Span(366, "D")


def test_refusals_that_halve():
    assert refusal_halves(162, "Historical Market Data Service error message:invalid step: 1")
    assert refusal_halves(
        162, "Historical Market Data Service error message:Time length exceed max."
    )
    assert not refusal_halves(162, "Historical data request pacing violation")


# ------------------------------------------------------------------- unit cases
def test_one_rth_session_of_second_bars():
    cal = between(RTH, date(2025, 12, 1), date(2025, 12, 5))
    day = date(2025, 12, 3)
    result = run("1 secs", [day], cal)
    assert len(result.requests) == 12  # 23,400 s in requests of at most 2000 S
    assert all(r.covers == (day,) for r in result.requests)
    assert result.requests[0].end_date_time == "20251203-21:00:00"  # the close, UTC dash form
    assert result.requests[1].end_date_time == "20251203-20:26:40"  # 2000 trading s earlier
    assert sum(int(r.duration.split()[0]) for r in result.requests) == 23_400
    assert describe_cost(result.requests) == "12 requests ≈ 2 min at 60 / 10 min"


def test_a_covered_session_between_gaps_is_bridged_only_when_cheaper():
    cal = between(RTH, date(2025, 11, 3), date(2025, 12, 31))
    days = [s.day for s in cal]
    # 1-min bars ask 10 D: gap, covered, gap in one request of 3 D instead of two.
    result = run("1 min", [days[3], days[5]], cal)
    assert [(r.duration, r.covers) for r in result.requests] == [("3 D", tuple(days[3:6]))]
    # 9 + covered + 9 fits no single request: two, and the covered session is not fetched.
    result = run("1 min", days[0:9] + days[10:19], cal)
    assert [r.duration for r in result.requests] == ["9 D", "9 D"]
    assert days[9] not in {d for r in result.requests for d in r.covers}
    # Covered sessions at the edges are never requested.
    result = run("1 min", days[10:14], cal)
    assert [(r.duration, r.covers) for r in result.requests] == [("4 D", tuple(days[10:14]))]
    assert result.requests[0].end_date_time == "20251120-21:00:00"


def test_daily_bars_twenty_years_in_one_request():
    cal = between(RTH, date(2006, 1, 1), date(2025, 12, 31))
    result = run("1 day", [s.day for s in cal], cal)
    assert [r.duration for r in result.requests] == ["20 Y"]
    assert lower_bound(cal, "1 day", TABLE) == 1


def test_years_never_reach_into_covered_sessions():
    cal = between(RTH, date(2014, 1, 1), date(2025, 12, 31))
    held = {s.day for s in cal if s.day < date(2016, 1, 1)}
    missing = [s.day for s in cal if s.day not in held]
    result = run("1 hour", missing, cal)
    for request in result.requests:
        _check_wire_window(request, cal, set(missing), series("1 hour"), "us_equity")
    bound = lower_bound([s for s in cal if s.day not in held], "1 hour", TABLE)
    assert len(result.requests) <= bound + 1


def test_unavailable_sessions_are_reported_not_requested():
    cal = between(RTH, date(2025, 1, 1), date(2025, 12, 31))
    days = [s.day for s in cal]
    now = datetime(2025, 12, 31, 18, tzinfo=UTC)  # the last session is still open
    head = datetime(2025, 3, 3, 15, tzinfo=UTC)  # inside the 03-03 session
    result = run("1 hour", days, cal, head=head, now=now)
    assert result.unavailable[date(2025, 12, 31)] is Reason.NOT_CLOSED
    assert {d for d, why in result.unavailable.items() if why is Reason.BEFORE_HEAD} == {
        d for d in days if d < date(2025, 3, 3)
    }
    assert result.requests[-1].covers[0] == date(2025, 3, 3)

    small = run("5 secs", days, cal, now=now)
    too_old = {d for d, why in small.unavailable.items() if why is Reason.SMALL_BARS_TOO_OLD}
    assert too_old == {d for d in days if d < date(2025, 7, 4)}  # 180 days before now
    fetched = {d for r in small.requests for d in r.covers}
    assert fetched == set(days) - set(small.unavailable)

    fut, opt = series("1 hour", sec_type="FUT"), series("1 hour", sec_type="OPT")
    expiry = date(2025, 6, 20)
    result = run("1 hour", days, cal, expiry=expiry, series=fut)
    assert set(result.unavailable) == {d for d in days if d > expiry}
    assert set(result.unavailable.values()) == {Reason.AFTER_EXPIRY}
    old = run("1 hour", days, cal, expiry=date(2023, 3, 17), series=fut)
    assert not old.requests and set(old.unavailable.values()) == {Reason.EXPIRED_TOO_OLD}
    gone = run("1 hour", days, cal, expiry=expiry, series=opt)
    assert not gone.requests and set(gone.unavailable.values()) == {Reason.EXPIRED_NO_HISTORY}


def test_no_end_date_series_get_one_request_ending_now():
    cal = between(RTH, date(2025, 1, 1), date(2025, 12, 31))
    days = [s.day for s in cal]
    contfut = series("1 hour", sec_type="CONTFUT")
    result = run("1 hour", [days[-30], days[-5]], cal, series=contfut)
    [request] = result.requests
    assert (request.end_date_time, request.duration) == ("", "30 D")
    assert request.covers == tuple(days[-30:])
    # 1-min bars reach 10 sessions back from now; older gaps cannot be fetched.
    adjusted = series("1 min", what="ADJUSTED_LAST")
    result = run("1 min", [days[-30], days[-5]], cal, series=adjusted)
    assert [(r.end_date_time, r.duration) for r in result.requests] == [("", "5 D")]
    assert result.unavailable == {days[-30]: Reason.BEYOND_ONE_REQUEST}
    with pytest.raises(ValueError):
        run("1 week", days, cal, series=series("1 week", what="ADJUSTED_LAST"))


def test_bad_inputs_are_refused():
    cal = between(RTH, date(2025, 12, 1), date(2025, 12, 5))
    with pytest.raises(ValueError):
        run("1 min", [date(2025, 12, 6)], cal)  # a Saturday: not an expected session
    with pytest.raises(ValueError):
        run("1 sec", [cal[0].day], cal, series=series("1 sec"))
    with pytest.raises(ValueError):
        run("1 min", [cal[0].day], list(reversed(cal)))
    with pytest.raises(ValueError):
        run("1 min", [cal[0].day], cal, now=datetime(2025, 12, 31))  # naive


def test_estimates():
    assert estimated_minutes(412) == pytest.approx(68.67, abs=0.01)
    assert round(estimated_minutes(412)) == 69
    cal = between(RTH, date(2025, 12, 1), date(2025, 12, 5))
    bid_ask = run("1 secs", [cal[0].day], cal, series=series("1 secs", what="BID_ASK"))
    assert {r.pacing_weight for r in bid_ask.requests} == {2}
    assert describe_cost(bid_ask.requests) == "12 requests ≈ 4 min at 60 / 10 min"
    daily = run("1 day", [s.day for s in cal], cal)
    assert describe_cost(daily.requests).startswith("1 request (bars of 1 min or more")
    assert lower_bound(cal, "1 secs", TABLE) == 59  # 5 × 23,400 s ÷ 2000, across sessions
    assert lower_bound(cal, "1 min", TABLE) == 1
    assert lower_bound([], "1 min", TABLE) == 0


# ------------------------------------------------------------------- properties
BAR_SIZES = ["1 secs", "5 secs", "30 secs", "1 min", "5 mins", "30 mins", "1 hour", "4 hours",
             "1 day"]  # fmt: skip


@st.composite
def scenarios(draw, contiguous: bool = False):
    bar_size = draw(st.sampled_from(BAR_SIZES))
    rth = draw(st.booleans())
    venue = draw(st.sampled_from(VENUES))
    cal = listing(venue, rth)
    small = is_small_bar(bar_size)
    length = draw(st.integers(1, 40 if small else 2_000))
    last = bisect.bisect_right([s.day for s in cal], date(2025, 12, 31)) - 1
    newest = draw(st.integers(last - 1_800, last))
    oldest = max(0, newest - length + 1)
    window = cal[oldest : newest + 1]
    if contiguous:
        a = draw(st.integers(0, len(window) - 1))
        b = draw(st.integers(a, len(window) - 1))
        missing = [s.day for s in window[a : b + 1]]
    else:
        mask = draw(st.lists(st.booleans(), min_size=len(window), max_size=len(window)))
        density = draw(st.sampled_from(["mask", "sparse", "dense"]))
        if density == "mask":
            missing = [s.day for s, m in zip(window, mask, strict=True) if m]
        else:
            step = 7 if density == "sparse" else 2
            missing = [s.day for i, s in enumerate(window) if mask[i] or i % step]
    now = window[-1].close + timedelta(minutes=draw(st.integers(-600, 60 * 24 * 30)))
    return series(bar_size, rth=rth), venue, window, missing, now


def _check_wire_window(
    request, cal, missing: set[date], ser: Series, venue: str
) -> tuple[int, int]:
    """What the gateway would serve for `request` ([start, end) in epoch s), checked against
    the sessions: inside the covered ones, never into held sessions outside `covers`."""
    end = rules.parse_end(request.end_date_time)
    assert end.when is not None and not end.implied_zone
    duration = rules.parse_duration(request.duration)
    rules.check_duration_limits(duration, TABLE.max_years)
    rules.check_step(rules.bar_kind(request.bar_size), duration)
    assert duration.unit in "SDY"
    if duration.unit == "S":
        assert duration.count <= TABLE.span(request.bar_size).count
    inst = SimpleNamespace(venue=venue)
    stop = int(end.when.timestamp())
    if duration.unit == "S":
        start = window_start_by_trading_seconds(inst, ser.use_rth, stop, duration.count)
    elif duration.unit == "D":
        start = window_start_by_sessions(inst, ser.use_rth, stop, duration.count)
    else:
        start = _calendar_back(end.when, duration.count, "Y")
    by_day = {s.day: s for s in cal}
    first, last = by_day[request.covers[0]], by_day[request.covers[-1]]
    assert request.covers[0] in missing and request.covers[-1] in missing  # no held edges
    assert int(last.close.timestamp()) >= stop > int(last.open.timestamp())
    if duration.unit == "D":
        assert start == int(first.open.timestamp())
    elif duration.unit == "S":
        assert int(first.open.timestamp()) <= start < int(first.close.timestamp())
    else:  # calendar years may reach back only into missing or unlisted time
        assert start <= int(first.open.timestamp())
        touched = [s for s in cal if s.close.timestamp() > start and s.day < first.day]
        assert all(s.day in missing for s in touched)
    return start, stop


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_plan_covers_every_fetchable_gap_and_breaks_no_rule(scenario):
    ser, venue, cal, missing, now = scenario
    result = plan(ser, missing, cal, table=TABLE, now=now)
    missing_set = set(missing)
    fetched = {d for r in result.requests for d in r.covers}
    assert missing_set <= fetched | set(result.unavailable)
    assert not fetched & set(result.unavailable)
    assert set(result.unavailable) <= missing_set
    windows = []
    for request in result.requests:
        windows.append(_check_wire_window(request, cal, missing_set, ser, venue))
        held = [d for d in request.covers if d not in missing_set]
        gaps = [d for d in request.covers if d in missing_set]
        assert all(gaps[0] < d < gaps[-1] for d in held)  # held only between gaps
        assert (request.bar_size, request.use_rth, request.format_date) == (
            ser.bar_size,
            ser.use_rth,
            2,
        )
    if is_small_bar(ser.bar_size):  # together the windows hold every fetched session whole
        spans = sorted(windows)
        for s in cal:
            if s.day in fetched and s.day in missing_set:
                o, c = int(s.open.timestamp()), int(s.close.timestamp())
                inside = [(a, b) for a, b in spans if a < c and b > o]
                assert min(a for a, _ in inside) <= o and max(b for _, b in inside) >= c
                assert sum(min(b, c) - max(a, o) for a, b in inside) == c - o  # no overlap
        assert all(now - timedelta(days=183) <= s.open for s in cal if s.day in fetched)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(contiguous=True))
def test_a_contiguous_gap_takes_the_lower_bound(scenario):
    ser, _venue, cal, missing, now = scenario
    result = plan(ser, missing, cal, table=TABLE, now=now)
    fetchable = [s for s in cal if s.day in set(missing) and s.day not in result.unavailable]
    bound = lower_bound(fetchable, ser.bar_size, TABLE)
    if TABLE.span(ser.bar_size).unit == "Y":
        assert len(result.requests) <= bound + 1
    else:
        assert len(result.requests) == bound


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from(["CONTFUT", "ADJUSTED_LAST"]))
def test_no_end_date_plans_are_one_request_ending_now(scenario, kind):
    ser, venue, cal, missing, now = scenario
    if kind == "CONTFUT":
        ser = Series(ser.con_id, "CONTFUT", "CME", ser.bar_size, "TRADES", ser.use_rth)
    else:
        ser = Series(ser.con_id, "STK", "SMART", ser.bar_size, "ADJUSTED_LAST", ser.use_rth)
    # A series without end dates counts back from now: its sessions run up to now.
    listed = listing(venue, ser.use_rth)
    after = bisect.bisect_right([s.day for s in listed], cal[-1].day)
    cal = cal + [s for s in listed[after : after + 40] if s.open < now]
    result = plan(ser, missing, cal, table=TABLE, now=now)
    assert len(result.requests) <= 1
    fetched = {d for r in result.requests for d in r.covers}
    assert fetched >= set(missing) - set(result.unavailable)
    for request in result.requests:
        assert request.end_date_time == ""
        duration = rules.parse_duration(request.duration)
        rules.check_duration_limits(duration, TABLE.max_years)
        rules.check_step(rules.bar_kind(request.bar_size), duration)
        oldest = min(d for d in request.covers if d in set(missing))
        assert request.covers[0] == oldest
        # The window counted back from now reaches the oldest missing session.
        inst = SimpleNamespace(venue=venue)
        stop = int(now.timestamp())
        if duration.unit == "S":
            start = window_start_by_trading_seconds(inst, ser.use_rth, stop, duration.count)
        elif duration.unit == "D":
            start = window_start_by_sessions(inst, ser.use_rth, stop, duration.count)
        else:
            start = _calendar_back(now, duration.count, "Y")
        first = cal[bisect.bisect_left([s.day for s in cal], oldest)]
        assert start <= int(first.open.timestamp())
