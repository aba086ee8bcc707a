"""The order engine's pure parts: order-type checks, triggers and fills against one quote
(ibsim.orders.matching), when orders may work (ibsim.orders.order_times), order conditions
(ibsim.orders.conditions), FA allocation (ibsim.orders.allocation), commissions and the Book's
fill booking."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibsim.accounts.book import UNSET, Book, Execution, FAGroup, FAProfile, Position
from ibsim.clock import ManualClock
from ibsim.config import Commissions
from ibsim.market.catalog import Catalog
from ibsim.market.quotes import Quote
from ibsim.orders import allocation, conditions, matching, order_times
from ibsim.orders.matching import Refused, Terms
from tests.kit.scenarios import AAPL, ESU4

NOW = datetime(2024, 7, 10, 15, 0, tzinfo=UTC)
T0 = int(NOW.timestamp())
CATALOG = Catalog(ManualClock(NOW))
APPLE, ES = CATALOG.by_con_id(AAPL), CATALOG.by_con_id(ESU4)
TICK = 0.01
Q = Quote(at=T0, bid=100.00, ask=100.04, last=100.01, bid_size=300, ask_size=500,
          last_size=200, open=True)  # fmt: skip


def terms(order_type: str = "LMT", action: str = "BUY", **fields) -> Terms:
    return Terms(action, order_type, fields.pop("quantity", 100.0), **fields)


# ----------------------------------------------------------------------------- checks
@pytest.mark.parametrize(
    ("t", "code", "words"),
    [
        (terms("MKT", quantity=0), 434, "cannot be zero"),
        (terms("MKT", quantity=-5), 201, "positive"),
        (terms("MKT", action="HOLD"), 201, "BUY or SELL"),
        (terms("LMT"), 201, "limit price"),
        (terms("LMT", limit=100.005), 110, "minimum price variation"),
        (terms("STP"), 201, "auxPrice"),
        (terms("STP LMT", limit=100.0), 201, "auxPrice"),
        (terms("TRAIL"), 201, "trailing"),
        (terms("TRAIL", aux=1.0, trailing_percent=2.0), 201, "not both"),
        (terms("TRAIL LIMIT", aux=1.0), 201, "lmtPriceOffset"),
        (terms("REL", aux=-0.01), 201, "negative"),
        (terms("PEG MID"), 201, "not simulated"),
        (terms("MOC", tif="GTC"), 201, "DAY"),
        (terms("STP", aux=99.0, tif="IOC"), 201, "at once"),
        (terms("LMT", limit=100.0, tif="OPG"), 201, "time in force"),
        (terms("LMT", limit=100.0, tif="GTD"), 201, "goodTillDate"),
        (terms("MKT", algo="Vwap", tif="IOC"), 201, "at once"),
        (terms("MKT", algo="Nonsense"), 439, "Algorithm"),
        (terms("MKT", algo="DarkIce"), 201, "DarkIce"),
        (terms("STP", aux=99.0, algo="Adaptive"), 201, "MKT or LMT"),
        (terms("LMT", limit=float("nan")), 201, "finite"),
    ],
)
def test_orders_ib_refuses(t, code, words):
    reject = matching.check(t, TICK)
    assert reject is not None and reject.code == code and words in reject.text


@pytest.mark.parametrize(
    "t",
    [
        terms("MKT"),
        terms("LMT", limit=100.0),
        terms("STP LMT", limit=99.0, aux=99.5),
        terms("TRAIL", trailing_percent=1.5),
        terms("TRAIL LIMIT", aux=0.5, lmt_price_offset=0.1, trail_stop=99.5),
        terms("REL", aux=0.01),
        terms("MIDPRICE"),
        terms("MOC"),
        terms("LMT", limit=100.0, algo="Adaptive"),
        terms("MKT", algo="Twap", tif="GTC"),
        terms("LMT", limit=100.0, tif="GTD", good_till_date="20240711 16:00:00 US/Eastern"),
    ],
)
def test_orders_ib_accepts(t):
    assert matching.check(t, TICK) is None


def test_prices_keep_to_the_tick_grid():
    assert matching.on_grid(5440.25, 0.25) and not matching.on_grid(5440.3, 0.25)
    assert matching.to_grid(100.005, 0.01, up=True) == 100.01
    assert matching.to_grid(100.005, 0.01, up=False) == 100.0
    assert matching.to_grid(100.02, 0.01, up=True) == 100.02


# ----------------------------------------------------------------------------- triggers
def test_a_sell_trailing_stop_only_ratchets_up():
    t = terms("TRAIL", action="SELL", aux=0.5)
    stop = matching.trail(t, None, Q, TICK)
    assert stop == 99.51
    higher = matching.trail(t, stop, replace(Q, last=101.0), TICK)
    assert higher == 100.5
    assert matching.trail(t, higher, replace(Q, last=100.2), TICK) == 100.5
    assert not matching.triggered(t, higher, replace(Q, last=100.51))
    assert matching.triggered(t, higher, replace(Q, last=100.5))


def test_a_buy_trailing_percent_starts_at_the_given_stop_and_ratchets_down():
    t = terms("TRAIL", action="BUY", trailing_percent=1.0, trail_stop=100.5)
    assert matching.trail(t, None, Q, TICK) == 100.5  # the client's initial stop
    assert matching.trail(t, 100.5, replace(Q, last=99.0), TICK) == 99.99
    assert matching.triggered(t, 99.99, replace(Q, last=100.0))


@pytest.mark.parametrize(
    ("kind", "action", "last", "fires"),
    [
        ("STP", "BUY", 100.5, True), ("STP", "BUY", 100.4, False),
        ("STP", "SELL", 100.5, True), ("STP", "SELL", 100.6, False),
        ("MIT", "BUY", 100.5, True), ("MIT", "BUY", 100.6, False),
        ("LIT", "SELL", 100.5, True), ("LIT", "SELL", 100.4, False),
    ],
)  # fmt: skip
def test_stops_and_if_touched_orders_trigger_on_the_last_price(kind, action, last, fires):
    t = terms(kind, action=action, aux=100.5, limit=100.5)
    assert matching.triggered(t, None, replace(Q, last=last)) is fires


def test_what_a_triggered_order_works_as():
    assert matching.elected(terms("STP", aux=1.0), None, TICK) == ("MKT", 0.0)
    assert matching.elected(terms("STP LMT", limit=2.0, aux=1.0), None, TICK) == ("LMT", 2.0)
    trail = terms("TRAIL LIMIT", action="SELL", aux=1.0, lmt_price_offset=0.05)
    assert matching.elected(trail, 99.5, TICK) == ("LMT", 99.45)
    assert matching.elected(terms("REL", aux=0.01), None, TICK) == ("REL", 0.0)


# ----------------------------------------------------------------------------- fills
def test_market_and_limit_orders_take_the_far_side():
    assert matching.match(terms("MKT"), "MKT", 0, Q, TICK) == (100.04, 500, "ask")
    assert matching.match(terms("MKT", action="SELL"), "MKT", 0, Q, TICK) == (100.0, 300, "bid")
    assert matching.match(terms("LMT"), "LMT", 100.04, Q, TICK) == (100.04, 500, "ask")
    assert matching.match(terms("LMT"), "LMT", 100.03, Q, TICK) is None
    assert matching.match(terms("LMT", action="SELL"), "LMT", 100.01, Q, TICK) is None


def test_midprice_fills_at_the_mid_within_its_cap():
    assert matching.match(terms("MIDPRICE"), "MIDPRICE", 0, Q, TICK)[0] == 100.02
    odd = replace(Q, ask=100.03)  # a half-tick mid rounds away from the order's side
    assert matching.match(terms("MIDPRICE"), "MIDPRICE", 0, odd, TICK)[0] == 100.02
    assert matching.match(terms("MIDPRICE", action="SELL"), "MIDPRICE", 0, odd, TICK)[0] == 100.01
    assert matching.match(terms("MIDPRICE"), "MIDPRICE", 100.01, Q, TICK) is None


def test_relative_orders_peg_to_their_side_and_fill_on_prints():
    rel = terms("REL", aux=0.01)
    assert matching.match(rel, "REL", 0, Q, TICK) == (100.01, 200, "last")  # printed at the peg
    assert matching.match(rel, "REL", 0, replace(Q, last=100.02), TICK) is None
    assert matching.match(rel, "REL", 0, replace(Q, last_size=0), TICK) is None
    assert matching.match(rel, "REL", 100.0, replace(Q, last=100.0), TICK)[0] == 100.0  # capped
    assert matching.match(terms("REL", aux=0.05), "REL", 0, Q, TICK) == (100.04, 500, "ask")


def test_a_limit_on_close_takes_part_only_inside_its_limit():
    assert matching.auction(terms("LOC", limit=100.0), 99.99)
    assert not matching.auction(terms("LOC", limit=100.0), 100.01)
    assert matching.auction(terms("MOC", action="SELL"), 1.0)


@given(st.integers(1, 100_000), st.integers(0, 1_000), st.integers(1, 10_000))
def test_an_algo_is_due_a_growing_whole_share_of_its_order(total, elapsed, span):
    start = T0
    due = order_times.due(total, start, start + span, start + elapsed)
    later = order_times.due(total, start, start + span, start + elapsed + 1)
    assert 0 <= due <= later <= total and due == int(due)
    assert order_times.due(total, start, start + span, start + span) == total


# ----------------------------------------------------------------------------- timing
def test_day_orders_end_with_their_session():
    assert APPLE is not None
    close = int(datetime(2024, 7, 10, 20, 0, tzinfo=UTC).timestamp())
    assert order_times.expiry("DAY", "", APPLE, T0, rth=True) == close
    assert order_times.expiry("DAY", "", APPLE, T0, rth=False) == close + 4 * 3600  # 20:00 NY
    assert order_times.expiry("GTC", "", APPLE, T0, rth=True) is None
    gtd = order_times.expiry("GTD", "20240711 10:00:00 US/Eastern", APPLE, T0, rth=True)
    assert gtd == int(datetime(2024, 7, 11, 14, 0, tzinfo=UTC).timestamp())
    with pytest.raises(Refused):
        order_times.expiry("GTD", "20240709 10:00:00 US/Eastern", APPLE, T0, rth=True)


def test_a_market_placed_after_the_close_waits_for_the_next_session():
    assert APPLE is not None
    evening = int(datetime(2024, 7, 11, 1, 0, tzinfo=UTC).timestamp())  # 21:00 New York
    opens, closes = order_times.market_hours(APPLE, evening, rth=True)
    assert opens == int(datetime(2024, 7, 11, 13, 30, tzinfo=UTC).timestamp())
    assert order_times.auction_close(APPLE, evening) == closes


def test_an_algo_window_from_its_params_or_the_default_span():
    assert APPLE is not None
    params = {"startTime": "11:05:00 US/Eastern", "endTime": "20240710-15:30:00"}
    window, past_end = order_times.algo_window("Vwap", params, APPLE, T0, 600)
    assert window == (T0 + 300, T0 + 1800) and not past_end
    assert order_times.algo_window("Twap", {}, APPLE, T0, 600) == ((T0, T0 + 600), False)
    assert order_times.algo_window("Adaptive", {}, APPLE, T0, 600) == (None, False)
    backwards = {"startTime": "12:00:00", "endTime": "11:00:00"}
    with pytest.raises(Refused):
        order_times.algo_window("Twap", backwards, APPLE, T0, 1)
    with pytest.raises(Refused):
        order_times.algo_window("Twap", {"endTime": "noon"}, APPLE, T0, 1)


# ----------------------------------------------------------------------------- conditions
class FakeMarket:
    def last(self, con_id: int) -> float | None:
        return {AAPL: 200.0}.get(con_id)

    def change(self, con_id: int) -> float | None:
        return 1.5

    def executed(self, sec_type: str, exchange: str, symbol: str) -> bool:
        return symbol == "AAPL"


def test_conditions_read_left_to_right_with_their_conjunctions():
    above = ("1", "a", "1", "199.0", str(AAPL), "SMART", "0")
    below = ("1", "o", "0", "150.0", str(AAPL), "SMART", "0")
    late = ("3", "a", "1", "20240710 12:00:00 US/Eastern")
    market = FakeMarket()
    assert conditions.met((above,), T0, market)
    assert not conditions.met((below,), T0, market)
    assert conditions.met((below, above), T0, market)  # or
    assert not conditions.met((above, late), T0, market)  # and: not yet 12:00
    assert conditions.met((("5", "a", "STK", "SMART", "AAPL"),), T0, market)
    assert conditions.met((("7", "a", "1", "1.0", str(AAPL), "SMART"),), T0, market)
    assert conditions.check((("4", "a", "1", "30"),), T0).code == 201
    assert conditions.check((("3", "a", "1", "tomorrow"),), T0).code == 201
    assert conditions.check((above, late), T0) is None


# ----------------------------------------------------------------------------- allocation
GROUP = FAGroup("G", "NetLiq", ("A", "B", "C"), (50.0, 30.0, 20.0))


@given(
    st.integers(0, 100_000),
    st.lists(st.floats(0.01, 1e6, allow_nan=False), min_size=1, max_size=8),
)
def test_a_split_adds_up_exactly_and_stays_within_one_of_its_share(quantity, raw):
    shares = {f"A{i}": w for i, w in enumerate(raw)}
    parts = allocation.split(quantity, shares)
    assert sum(parts.values()) == quantity
    total = sum(raw)
    for account, part in parts.items():
        assert part == int(part) >= 0
        assert abs(part - quantity * shares[account] / total) < 1 + 1e-6


@given(st.lists(st.integers(1, 500), min_size=1, max_size=20))
def test_fills_divided_over_what_is_owed_reach_the_targets_exactly(fills):
    total = sum(fills)
    targets = allocation.split(total, {"A": 3.0, "B": 2.0, "C": 2.0})
    got = dict.fromkeys(targets, 0.0)
    for fill in fills:
        owed = {a: targets[a] - got[a] for a in targets}
        for account, part in allocation.allocate(fill, owed).items():
            assert part <= owed[account]
            got[account] += part
    assert got == targets


def test_fractional_quantities_split_in_ten_thousandths():
    parts = allocation.split(1.5, {"A": 1.0, "B": 1.0, "C": 1.0})
    assert parts == {"A": 0.5, "B": 0.5, "C": 0.5}
    assert sum(allocation.split(0.0001, {"A": 1.0, "B": 1.0}).values()) == 0.0001


def test_group_methods_weigh_the_accounts():
    nl, af = {"A": 100.0, "B": 300.0, "C": 0.0}, {"A": 1.0, "B": 1.0, "C": 2.0}
    assert allocation.weights(GROUP, "Equal", nl, af) == {"A": 1.0, "B": 1.0, "C": 1.0}
    assert allocation.weights(GROUP, "NetLiq", nl, af) == nl
    assert allocation.weights(GROUP, "AvailableEquity", nl, af) == af
    assert allocation.weights(GROUP, "Percent", nl, af) == {"A": 50.0, "B": 30.0, "C": 20.0}
    with pytest.raises(allocation.AllocationError, match="amount per account"):
        allocation.weights(FAGroup("H", "Ratio", ("A",)), "Ratio", nl, af)
    with pytest.raises(allocation.AllocationError, match="unknown"):
        allocation.weights(GROUP, "Astrology", nl, af)
    with pytest.raises(allocation.AllocationError, match="positive"):
        allocation.weights(GROUP, "NetLiq", dict.fromkeys("ABC", 0.0), af)
    profile = FAProfile("P", 3, {"A": 10.0, "B": 5.0})
    assert allocation.profile_weights(profile) == {"A": 10.0, "B": 5.0}


# ----------------------------------------------------------------------------- commissions
@pytest.mark.parametrize(
    ("sec_type", "shares", "price", "mult", "expected"),
    [
        ("STK", 100, 200.0, 1, 1.0),  # the minimum
        ("STK", 1_000, 200.0, 1, 5.0),
        ("STK", 1, 5.0, 1, 0.05),  # capped at 1 % of the value
        ("FUT", 3, 5_000.0, 50, 2.55),
        ("OPT", 5, 7.0, 100, 3.25),
        ("CASH", 20_000, 1.1, 1, 2.0),
    ],
)
def test_commissions_follow_a_tiered_schedule(sec_type, shares, price, mult, expected):
    assert Commissions().charge(sec_type, shares, price, mult) == expected


# ----------------------------------------------------------------------------- the book
def fill(side: str, shares: float, price: float, con_id: int = AAPL, commission: float = 1.0):
    return Execution(
        exec_id=f"x.{side}.{shares}.{price}", account="DU1", con_id=con_id, side=side,
        shares=shares, price=price, time=NOW, order_id=1, commission=commission,
    )  # fmt: skip


def test_fills_move_the_position_and_the_cash():
    book = Book.from_scenario({"accounts": [{"id": "DU1", "cash": {"USD": 10_000.0}}]})
    opened = book.record_fill(fill("BOT", 10, 100.0), APPLE)
    assert opened.realized_pnl == UNSET
    assert book.positions == (Position("DU1", AAPL, 10, 100.1, 0.0),)  # the commission in cost
    assert book.account("DU1").cash["USD"] == 10_000.0 - 1_000.0 - 1.0
    closed = book.record_fill(fill("SLD", 4, 110.0), APPLE)
    assert closed.realized_pnl == round(4 * (110.0 - 100.1) - 1.0, 2)
    assert book.positions[0].quantity == 6 and book.positions[0].avg_cost == 100.1
    flipped = book.record_fill(fill("SLD", 10, 105.0), APPLE)
    assert flipped.realized_pnl == round(6 * (105.0 - 100.1) - 1.0, 2)
    assert (book.positions[0].quantity, book.positions[0].avg_cost) == (-4, 105.0)
    assert [e.exec_id for e in book.executions] == [opened.exec_id, closed.exec_id, flipped.exec_id]


def test_futures_fills_move_only_the_commission_in_cash():
    book = Book.from_scenario({"accounts": [{"id": "DU1", "cash": {"USD": 10_000.0}}]})
    book.record_fill(fill("BOT", 1, 5_440.0, con_id=ESU4, commission=0.85), ES)
    assert book.account("DU1").cash["USD"] == 10_000.0 - 0.85
    assert book.positions[0].avg_cost == 5_440.0 * 50 + 0.85
