"""Streaming from the embedded gateway through unmodified clients: market data ticks (live,
delayed, snapshots), IB's market data lines, tick-by-tick, and real-time bars that equal the
historical 5-second bars of the same windows (IB's market data pages).

Clocks are the gateway's: a ManualClock stands still until the test moves it, a ShiftedClock runs
fast. Only outcomes are asserted, each behind a bounded wait."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from ib_async import Contract, TickByTickAllLast, TickByTickBidAsk, TickByTickMidPoint
from ibapi.contract import Contract as ApiContract

from ibsim.clock import ShiftedClock
from ibsim.config import PacingRules
from ibsim.market.quotes import quote_at
from tests.kit.gateway import NOW, Errors, stock, sync
from tests.kit.ibapi_harness import IBApiApp
from tests.kit.waiting import ib_until

EPOCH = int(NOW.timestamp())


# ------------------------------------------------------------------- reqMktData
def test_market_data_streams_the_quote_at_the_gateways_now(gw, clock, connect):
    ib = connect(gw)
    aapl = stock(ib, "AAPL")
    inst = gw.gateway.catalog.by_con_id(aapl.conId)
    ticker = ib.reqMktData(aapl)
    ib_until(ib, lambda: ticker.volume > 0 and ticker.close > 0, "the first ticks")

    q = quote_at(inst, EPOCH)
    assert (ticker.bid, ticker.ask, ticker.last) == (q.bid, q.ask, q.last)
    assert (ticker.bidSize, ticker.askSize, ticker.lastSize) == (
        q.bid_size,
        q.ask_size,
        q.last_size,
    )
    assert ticker.bid < ticker.ask and ticker.bid <= ticker.last <= ticker.ask
    assert ticker.bidSize > 0 and ticker.askSize > 0
    assert ticker.low <= ticker.open <= ticker.high and ticker.low <= ticker.last <= ticker.high
    assert ticker.minTick == 0.01 and ticker.marketDataType == 1
    assert ticker.lastTimestamp == NOW

    # the stream follows the gateway's clock
    later = quote_at(inst, EPOCH + 7)
    clock.advance(7)
    ib_until(ib, lambda: ticker.lastTimestamp == NOW + timedelta(seconds=7), "the next trade")
    assert (ticker.bid, ticker.ask, ticker.last) == (later.bid, later.ask, later.last)


def test_delayed_market_data_lags_and_uses_the_delayed_tick_types(gw, connect):
    ib = connect(gw)
    aapl = stock(ib, "AAPL")
    ib.reqMarketDataType(3)
    ticker = ib.reqMktData(aapl)
    types: set[int] = set()
    ticker.updateEvent += lambda t: types.update(tick.tickType for tick in t.ticks)
    ib_until(ib, lambda: ticker.close > 0 and ticker.volume > 0, "the delayed ticks")
    q = quote_at(
        gw.gateway.catalog.by_con_id(aapl.conId), EPOCH - gw.gateway.config.delayed_data_lag
    )
    assert ticker.marketDataType == 3
    assert (ticker.bid, ticker.ask, ticker.last) == (q.bid, q.ask, q.last)
    assert {66, 67, 68, 72, 73, 74, 75, 76} <= types
    assert not types & {1, 2, 4, 6, 7, 8, 9, 14}


def test_a_snapshot_completes_and_holds_no_line(make_gateway, connect):
    gw = make_gateway(market_data_lines=1)
    ib = connect(gw)
    aapl, spy = stock(ib, "AAPL"), stock(ib, "SPY")
    ib.reqMktData(aapl)  # the only line
    [ticker] = ib.reqTickers(spy)
    q = quote_at(gw.gateway.catalog.by_con_id(spy.conId), EPOCH)
    assert (ticker.bid, ticker.ask, ticker.last) == (q.bid, q.ask, q.last)
    assert ticker.close > 0 and ticker.volume > 0


def test_market_data_lines_are_the_logins_and_freed_by_cancel_and_disconnect(make_gateway, connect):
    gw = make_gateway(market_data_lines=3)
    first = connect(gw)
    seen = Errors(first)
    names = ("AAPL", "MSFT", "SPY", "QQQ")
    contracts = {name: stock(first, name) for name in names}
    tickers = [first.reqMktData(contracts[name]) for name in names[:3]]
    over = first.reqMktData(contracts["QQQ"])
    sync(first)
    over_id = first.wrapper.ticker2ReqId["mktData"][over]
    ib_until(first, lambda: seen.of(over_id), "error 101")
    assert seen.of(over_id) == [(101, "Max number of tickers has been reached.")]
    bars = first.reqRealTimeBars(contracts["QQQ"], 5, "TRADES", False)  # a real-time bar needs one
    ib_until(first, lambda: seen.of(bars.reqId), "error 101 for real-time bars")
    assert seen.of(bars.reqId)[0][0] == 101

    # another client of the same login finds no line either
    second = connect(gw)
    second_seen = Errors(second)
    refused = second.reqMktData(contracts["QQQ"])
    sync(second)
    refused_id = second.wrapper.ticker2ReqId["mktData"][refused]
    ib_until(second, lambda: second_seen.of(refused_id), "error 101 on the second client")

    # a cancel frees a line
    first.cancelMktData(tickers[0].contract)
    again = second.reqMktData(contracts["QQQ"])
    ib_until(second, lambda: again.bid > 0, "ticks on the freed line")

    # a disconnect frees all of the client's lines
    first.disconnect()
    ib_until(second, lambda: len(gw.call(lambda: dict(gw.gateway.clients))) == 1, "the hang-up")
    more = [second.reqMktData(contracts[name]) for name in ("AAPL", "MSFT")]
    ib_until(second, lambda: all(t.bid > 0 for t in more), "ticks on the lines freed")
    assert [code for _, code, _ in second_seen.seen if code == 101] == [101]


def test_unknown_contracts_and_unknown_cancels_get_ibs_errors(gw, connect):
    ib = connect(gw)
    seen = Errors(ib)
    ib.reqMktData(Contract(conId=999_999_999, exchange="SMART"))
    ib.client.cancelMktData(4242)
    ib.client.cancelRealTimeBars(4243)
    ib_until(ib, lambda: seen.of(4242) and seen.of(4243), "error 300")
    assert seen.of(4242) == [(300, "Can't find EId with tickerId:4242")]
    assert seen.of(4243)[0][0] == 300
    assert any(code == 200 for _, code, _ in seen.seen)


# ------------------------------------------------------------------- tick-by-tick
@pytest.mark.parametrize(
    ("kind", "tick_class"),
    [
        ("Last", TickByTickAllLast),
        ("AllLast", TickByTickAllLast),
        ("BidAsk", TickByTickBidAsk),
        ("MidPoint", TickByTickMidPoint),
    ],
)
def test_tick_by_tick_decodes_in_ib_async(gw, clock, connect, kind, tick_class):
    ib = connect(gw)
    aapl = stock(ib, "AAPL")
    inst = gw.gateway.catalog.by_con_id(aapl.conId)
    ticker = ib.reqTickByTickData(aapl, kind)
    ticks: list = []  # ib_async empties tickByTicks after each update
    ticker.updateEvent += lambda t: ticks.extend(t.tickByTicks)
    sync(ib)
    clock.advance(4)
    ib_until(ib, lambda: len(ticks) >= 2, f"{kind} ticks")
    assert all(isinstance(t, tick_class) for t in ticks)
    quotes = [quote_at(inst, EPOCH + s) for s in range(5)]
    tick = ticks[-1]
    if kind in ("Last", "AllLast"):
        assert (tick.price, tick.size) in {(q.last, q.last_size) for q in quotes}
        assert tick.exchange == "NASDAQ"
    elif kind == "BidAsk":
        assert tick.bidPrice < tick.askPrice and tick.bidSize > 0 and tick.askSize > 0
        assert (tick.bidPrice, tick.askPrice) in {(q.bid, q.ask) for q in quotes}
    else:
        assert tick.midPoint in {q.mid for q in quotes}


def test_tick_by_tick_has_its_own_small_quota(make_gateway, connect):
    gw = make_gateway(tick_by_tick_lines=2)
    ib = connect(gw)
    seen = Errors(ib)
    names = ("AAPL", "MSFT", "SPY")
    tickers = [ib.reqTickByTickData(stock(ib, name), "BidAsk") for name in names]
    sync(ib)
    over = ib.wrapper.ticker2ReqId["BidAsk"][tickers[2]]
    ib_until(ib, lambda: seen.of(over), "error 10190")
    assert seen.of(over) == [(10190, "Max number of tick-by-tick requests has been reached.")]
    assert gw.gateway.config.market_data_lines == 100  # no market data line was taken


# ------------------------------------------------------------------- real-time bars
@pytest.mark.parametrize("what", ["TRADES", "MIDPOINT"])
def test_real_time_bars_equal_the_historical_bars_of_their_windows(make_gateway, connect, what):
    # the pump wakes every 0.3 s while 6 s of gateway time pass: at least one window closes
    # between two wakes each time, and none may be skipped
    gw = make_gateway(clock=ShiftedClock(NOW, speed=20), stream_interval=0.3)
    ib = connect(gw)
    aapl = stock(ib, "AAPL")
    bars = ib.reqRealTimeBars(aapl, 5, what, False)
    ib_until(ib, lambda: len(bars) >= 12, "a minute of real-time bars")
    times = [int(bar.time.timestamp()) for bar in bars]
    assert all(b - a == 5 for a, b in itertools.pairwise(times)), times

    history = ib.reqHistoricalData(
        aapl, endDateTime="", durationStr="300 S", barSizeSetting="5 secs",
        whatToShow=what, useRTH=False, formatDate=2,
    )  # fmt: skip
    by_start = {int(bar.date.timestamp()): bar for bar in history}
    for bar in list(bars):
        past = by_start[int(bar.time.timestamp())]
        assert (bar.open_, bar.high, bar.low, bar.close) == (
            past.open,
            past.high,
            past.low,
            past.close,
        )
        assert (bar.volume, bar.wap, bar.count) == (past.volume, past.average, past.barCount)


def test_a_real_time_bar_comes_when_its_window_closes(gw, clock, connect):
    ib = connect(gw)
    bars = ib.reqRealTimeBars(stock(ib, "AAPL"), 5, "TRADES", True)
    sync(ib)
    clock.advance(4)
    ib.sleep(0.2)
    assert len(bars) == 0  # the window [NOW, NOW + 5) is still open
    clock.advance(1)
    ib_until(ib, lambda: len(bars) == 1, "the first bar")
    assert bars[0].time == NOW and bars[0].volume > 0
    clock.advance(3600 * 6)  # past the RTH close: only the session's windows are sent
    ib_until(ib, lambda: bars[-1].time == datetime(2024, 7, 10, 19, 59, 55, tzinfo=UTC), "the day")
    assert len(bars) == 5 * 3600 // 5  # 15:00 to 20:00 UTC


@pytest.mark.parametrize(
    ("size", "what", "cause"),
    [
        (10, "TRADES", "real-time bars are 5 seconds only"),
        (5, "BID_ASK", "What to show field is missing or incorrect."),
    ],
)
def test_real_time_bars_refuse_what_ib_refuses(gw, connect, size, what, cause):
    ib = connect(gw)
    seen = Errors(ib)
    bars = ib.reqRealTimeBars(stock(ib, "AAPL"), size, what, False)
    ib_until(ib, lambda: seen.of(bars.reqId), "error 321")
    [(code, text)] = seen.of(bars.reqId)
    assert code == 321 and text.startswith("Error validating request") and cause in text


def test_real_time_bars_count_against_the_small_bar_pacing(make_gateway, connect):
    gw = make_gateway(pacing=PacingRules(window_limit=2, identical_window=0.0, burst_limit=99))
    ib = connect(gw)
    seen = Errors(ib)
    lists = [ib.reqRealTimeBars(stock(ib, n), 5, "TRADES", False) for n in ("AAPL", "MSFT", "SPY")]
    ib_until(ib, lambda: seen.of(lists[2].reqId), "error 420")
    assert seen.of(lists[2].reqId) == [
        (420, "Invalid Real-time Query:Historical data request pacing violation")
    ]
    assert not seen.of(lists[0].reqId) and not seen.of(lists[1].reqId)


# ------------------------------------------------------------------- the official client
class StreamingApp(IBApiApp):
    """The ibapi harness with the streaming callbacks recorded too."""

    def tickPrice(self, reqId, tickType, price, attrib) -> None:
        self._put(reqId, "tickPrice", tickType, price)

    def tickSize(self, reqId, tickType, size) -> None:
        self._put(reqId, "tickSize", tickType, size)

    def tickSnapshotEnd(self, reqId) -> None:
        self._put(reqId, "tickSnapshotEnd")

    def tickByTickBidAsk(self, reqId, time, bidPrice, askPrice, bidSize, askSize, attrib):
        self._put(reqId, "tickByTickBidAsk", time, bidPrice, askPrice, bidSize, askSize)

    def realtimeBar(self, reqId, time, open_, high, low, close, volume, wap, count) -> None:
        self._put(reqId, "realtimeBar", time, open_, high, low, close, volume, wap, count)


def test_the_official_client_decodes_ticks_tick_by_tick_and_bars(gw, clock):
    app = StreamingApp().start(gw.port)
    try:
        aapl = ApiContract()
        aapl.conId, aapl.exchange = 265598, "SMART"
        inst = gw.gateway.catalog.by_con_id(265598)
        q = quote_at(inst, EPOCH)

        snapshot = app.next_req_id()
        app.reqMktData(snapshot, aapl, "", True, False, [])
        reply = app.collect(snapshot, "tickSnapshotEnd")
        prices = dict(reply.all("tickPrice"))
        assert (prices[1], prices[2], prices[4]) == (q.bid, q.ask, q.last)

        ticks, bars = app.next_req_id(), app.next_req_id()
        app.reqTickByTickData(ticks, aapl, "BidAsk", 0, False)
        app.reqRealTimeBars(bars, aapl, 5, "TRADES", False, [])
        app.sync()
        t, bid, ask, bid_size, ask_size = app.next_event(ticks).args
        assert (t, bid, ask, bid_size, ask_size) == (EPOCH, q.bid, q.ask, q.bid_size, q.ask_size)
        clock.advance(5)
        bar = app.next_event(bars)
        assert bar.name == "realtimeBar" and bar.args[0] == EPOCH and bar.args[-1] > 0
        app.cancelTickByTickData(ticks)
        app.cancelRealTimeBars(bars)
        app.sync()
        assert app.decode_failures == []
        assert not [e for e in app.errors if not e.is_warning]
    finally:
        app.close()
