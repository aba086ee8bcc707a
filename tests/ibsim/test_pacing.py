"""IB's pacing rules for small bars: the pure pacer, then the gateway through ib_async.

Time is a ManualClock, so a 10-minute window passes in one call and no test depends on speed.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ib_async import Stock

from ibsim.clock import ManualClock
from ibsim.config import PacingRules
from ibsim.market.pacing import PacedRequest, Pacer
from tests.kit.gateway import NOW, request_error

AAPL = Stock("AAPL", "SMART", "USD")
MSFT = Stock("MSFT", "SMART", "USD")
PACING = (
    162,
    "Historical Market Data Service error message:Historical data request pacing violation",
)


def req(at: float, n: int = 0, key: str = "AAPL", weight: int = 1) -> PacedRequest:
    return PacedRequest(at, (key, "SMART", "TRADES"), (key, n), weight)


def test_identical_request_within_15_seconds_is_refused():
    pacer = Pacer(PacingRules())
    assert pacer.admit(req(0.0))
    assert not pacer.admit(req(14.9))
    assert pacer.admit(req(15.0))


def test_six_requests_for_one_key_within_2_seconds_are_refused():
    pacer = Pacer(PacingRules())
    assert all(pacer.admit(req(0.1 * i, n=i)) for i in range(5))
    assert not pacer.admit(req(0.5, n=5))
    assert pacer.admit(req(0.5, n=5, key="MSFT"))  # another contract has its own count
    assert pacer.admit(req(2.0, n=6))  # the first of the five has left the 2 s window


def test_sixty_per_ten_minutes_with_bid_ask_counting_twice():
    pacer = Pacer(PacingRules())
    assert all(pacer.admit(req(10.0 * i, n=i)) for i in range(59))
    assert not pacer.admit(req(590.0, n=100, weight=2))  # BID_ASK would make 61
    assert pacer.admit(req(590.0, n=101))  # a single one makes 60
    assert not pacer.admit(req(595.0, n=102))
    assert pacer.used(595.0) == 60
    assert pacer.admit(req(600.0, n=103))  # the request at t=0 has left the window


def test_compressed_constants():
    pacer = Pacer(PacingRules(window=6.0, window_limit=3, identical_window=1.0, burst_window=0.2))
    assert all(pacer.admit(req(float(i), n=i)) for i in range(3))
    assert not pacer.admit(req(3.0, n=3))
    assert pacer.admit(req(6.0, n=4))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5.0), st.integers(0, 3), st.sampled_from([1, 2])),
                max_size=150))  # fmt: skip
def test_admitted_requests_never_break_any_rule(steps):
    rules = PacingRules()
    pacer, t, admitted = Pacer(rules), 0.0, []
    for gap, n, weight in steps:
        t += gap
        request = req(t, n=n, key=f"K{n % 2}", weight=weight)
        if pacer.admit(request):
            admitted.append(request)
    for r in admitted:
        window = [a for a in admitted if r.at - rules.window < a.at <= r.at]
        assert sum(a.weight for a in window) <= rules.window_limit
        same = [a for a in admitted if a.identity == r.identity and 0 < r.at - a.at < 15.0]
        assert not same
        burst = [a for a in admitted if a.key == r.key and r.at - rules.burst_window < a.at <= r.at]
        assert len(burst) < rules.burst_limit


# ----------------------------------------------------------------- through the gateway
def small_bars(ib, contract=AAPL, end="20240709-15:00:00", what="TRADES"):
    return ib.reqHistoricalDataAsync(contract, end, "1800 S", "1 secs", what, True, 2, timeout=30)


def paced_gateway(make_gateway, connect):
    clock = ManualClock(NOW)
    gw = make_gateway(clock=clock, pacing=PacingRules())
    return connect(gw), clock


def test_gateway_refuses_an_identical_request_within_15_s(make_gateway, connect):
    ib, clock = paced_gateway(make_gateway, connect)
    assert ib.run(small_bars(ib))
    assert request_error(ib, small_bars(ib)) == PACING
    clock.advance(15)
    assert ib.run(small_bars(ib))


def test_gateway_refuses_the_sixth_request_for_a_contract_within_2_s(make_gateway, connect):
    ib, clock = paced_gateway(make_gateway, connect)
    ends = [f"20240709-15:0{i}:00" for i in range(7)]
    for end in ends[:5]:
        assert ib.run(small_bars(ib, end=end))
    assert request_error(ib, small_bars(ib, end=ends[5])) == PACING
    assert ib.run(small_bars(ib, contract=MSFT, end=ends[5]))
    clock.advance(2)
    assert ib.run(small_bars(ib, end=ends[6]))


def test_gateway_allows_sixty_per_ten_minutes_and_bid_ask_counts_two(make_gateway, connect):
    ib, clock = paced_gateway(make_gateway, connect)
    for i in range(30):
        assert ib.run(small_bars(ib, end=f"20240709-15:{i:02d}:00", what="BID_ASK"))
        clock.advance(3)
    assert request_error(ib, small_bars(ib, end="20240709-16:00:00")) == PACING
    head = request_error(ib, ib.reqHeadTimeStampAsync(AAPL, "TRADES", True, 1))
    assert head == PACING  # head-timestamp requests count against the same budget
    clock.advance(600 - 90)  # the first request leaves the window
    assert ib.run(small_bars(ib, end="20240709-16:00:00"))


def test_bars_of_one_minute_and_longer_are_not_hard_paced(make_gateway, connect):
    ib, _ = paced_gateway(make_gateway, connect)
    for _ in range(3):  # identical, back to back
        assert ib.reqHistoricalData(AAPL, "20240709-15:00:00", "1 D", "1 min", "TRADES", True, 2)
