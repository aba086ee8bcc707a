"""Historical bars through ib_async: sizes, sources, formats, end forms, durations, live updates."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from ib_async import ContFuture, Contract, Forex, Future, Index, Stock

from ibsim.clock import ManualClock
from ibsim.market.rules import BAR_SECONDS
from tests.kit.gateway import NOW, request_error
from tests.kit.waiting import until

AAPL = Stock("AAPL", "SMART", "USD")
JULY_3_CLOSE = "20240703-21:00:00"  # after the 13:00 early close, in the UTC dash form


def bars(ib, contract=AAPL, end=JULY_3_CLOSE, duration="1 D", size="1 min", what="TRADES",
         rth=True, fmt=2, keep=False):  # fmt: skip
    result = ib.reqHistoricalData(contract, end, duration, size, what, rth, fmt, keep, timeout=30)
    return result if keep else list(result)  # BarDataList compares by identity


def test_early_close_has_210_one_minute_rth_bars(ib):
    day = bars(ib)
    assert len(day) == 210
    assert day[0].date == datetime(2024, 7, 3, 13, 30, tzinfo=UTC)
    assert day[-1].date == datetime(2024, 7, 3, 16, 59, tzinfo=UTC)


def test_extended_hours_with_use_rth_0(ib):
    day = bars(ib, rth=False)
    assert day[0].date == datetime(2024, 7, 3, 8, 0, tzinfo=UTC)  # 04:00 New York
    assert day[-1].date == datetime(2024, 7, 3, 20, 59, tzinfo=UTC)  # 17:00 after the early close
    assert len(day) == 13 * 60


@pytest.mark.parametrize("size", list(BAR_SECONDS))
def test_every_intraday_bar_size(ib, size):
    seconds = BAR_SECONDS[size]
    duration = "1800 S" if seconds <= 30 else "1 D"
    result = bars(ib, end="20240702-19:00:00", duration=duration, size=size)
    assert result
    steps = {(b.date - a.date).total_seconds() for a, b in itertools.pairwise(result)}
    # Buckets sit on the local clock grid; only the first one is clipped to the 09:30 open.
    assert all(s % seconds == 0 or s < seconds for s in steps)
    assert all(b.date.second % min(seconds, 60) == 0 for b in result[1:])


@pytest.mark.parametrize(("size", "count"), [("1 day", 21), ("1 week", 5), ("1 month", 2)])
def test_session_bar_sizes_are_dated_by_session(ib, size, count):
    result = bars(ib, end="20240731-21:00:00", duration="1 M", size=size, fmt=1)
    assert all(isinstance(b.date, date) and not isinstance(b.date, datetime) for b in result)
    assert len(result) == count
    assert result[0].date.weekday() < 5


def test_one_hour_bars_start_at_the_open_then_follow_the_clock(ib):
    result = bars(ib, end="20240702-21:00:00", size="1 hour", fmt=1)
    assert [b.date.strftime("%H:%M") for b in result] == [
        "09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00",
    ]  # fmt: skip
    assert str(result[0].date.tzinfo) == "US/Eastern"


@pytest.mark.parametrize("what", ["TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"])
def test_what_to_show_for_stocks(ib, what):
    result = bars(ib, what=what, size="5 mins")
    assert len(result) == 42
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in result)
    if what == "TRADES":
        assert all(b.volume > 0 and b.barCount > 0 and b.low <= b.average <= b.high for b in result)
    else:
        assert all(b.volume == -1 and b.barCount == -1 for b in result)


def test_bid_is_below_ask(ib):
    bid = bars(ib, what="BID", size="5 mins")
    ask = bars(ib, what="ASK", size="5 mins")
    assert all(b.close < a.close for b, a in zip(bid, ask, strict=True))


def test_adjusted_last_needs_no_end_date(ib):
    result = bars(ib, end="", duration="2 D", what="ADJUSTED_LAST", size="1 hour")
    assert result and result[-1].date <= datetime(2024, 7, 10, 15, 0, tzinfo=UTC)


def test_fx_has_five_decimals_and_no_trades(ib):
    result = bars(ib, contract=Forex("EURUSD"), what="MIDPOINT", rth=False, size="1 hour")
    assert len(result) == 24  # 17:15 to 17:00 New York: a bar per hour, the first clipped
    prices = [p for b in result for p in (b.open, b.high, b.low, b.close)]
    assert all(round(p, 5) == p for p in prices)
    assert any(round(p, 4) != p for p in prices)


def test_futures_prices_sit_on_the_tick(ib):
    es = Future("ES", "20240920", "CME")
    result = bars(ib, contract=es, size="5 mins", rth=False)
    prices = [p for b in result for p in (b.open, b.high, b.low, b.close)]
    assert all(abs(p * 4 - round(p * 4)) < 1e-9 for p in prices)


def test_continuous_future_bars(ib):
    result = bars(ib, contract=ContFuture("ES", "CME"), end="", duration="2 D", size="1 hour")
    assert result


def test_expired_future_bars_stop_at_expiry(ib):
    expired = Future("ES", "20240315", "CME", includeExpired=True)
    result = bars(ib, contract=expired, end="", duration="1 M", size="1 day")
    assert result[-1].date == date(2024, 3, 15)


def test_index_trades(ib):
    result = bars(ib, contract=Index("SPX", "CBOE"), size="30 mins")
    assert len(result) == 7 and all(b.close > 1000 for b in result)


@pytest.mark.parametrize(
    "end",
    ["20240703-21:00:00", "20240703 17:00:00 US/Eastern", "20240703 21:00:00 UTC",
     datetime(2024, 7, 3, 21, 0, tzinfo=UTC)],
)  # fmt: skip
def test_every_end_date_form_means_the_same_instant(ib, end):
    assert bars(ib, end=end) == bars(ib)


def test_zone_less_end_date_is_read_in_the_tws_zone_with_warning_2174(ib):
    warnings = []
    ib.errorEvent += lambda req_id, code, text, contract: warnings.append(code)
    assert bars(ib, end="20240703 17:00:00") == bars(ib)
    assert 2174 in warnings


def test_durations_count_trading_time(ib):
    # 1800 trading seconds ending 30 minutes after the open are exactly the first 30 minutes
    # ...and 2 D ending on the 5th covers the 3rd (early close) and the 5th, skipping the 4th.
    seconds = bars(ib, end="20240705-14:00:00", duration="1800 S", size="1 min")
    assert len(seconds) == 30 and seconds[0].date.hour == 13
    two_days = bars(ib, end="20240705-21:00:00", duration="2 D", size="1 day", fmt=1)
    assert [b.date for b in two_days] == [date(2024, 7, 3), date(2024, 7, 5)]
    a_week = bars(ib, end="20240705-21:00:00", duration="1 W", size="1 day", fmt=1)
    assert [b.date.day for b in a_week] == [1, 2, 3, 5]
    a_year = bars(ib, end="20231229-22:00:00", duration="1 Y", size="1 day", fmt=1)
    assert len(a_year) == 251  # 2022-12-30 and the 250 NYSE sessions of 2023


def test_request_for_now_ends_with_the_open_bar(make_gateway, connect):
    ib = connect(make_gateway(clock=ManualClock(NOW + timedelta(seconds=90))))
    hours = bars(ib, end="", duration="1 D", size="1 hour")
    assert hours[-1].date == NOW
    seconds = bars(ib, end="", duration="1800 S", size="1 secs")
    assert seconds[-1].date == NOW + timedelta(seconds=89)
    opened = [b for b in seconds if b.date >= NOW]
    assert hours[-1].close == opened[-1].close
    assert hours[-1].volume == sum(b.volume for b in opened)


def test_keep_up_to_date_sends_the_open_bar_then_new_bars(make_gateway, connect):
    gw = make_gateway()
    ib = connect(gw)
    clock = gw.gateway.config.clock
    live = bars(ib, end="", duration="1800 S", size="5 secs", keep=True)
    assert live[-1].date == NOW - timedelta(seconds=5)  # the last bar with data
    for step in (1, 2):
        clock.advance(5)
        ib.run(until(lambda step=step: live[-1].date == NOW + timedelta(seconds=5 * (step - 1))))
    assert [b.date for b in live[-3:]] == [
        NOW - timedelta(seconds=5),
        NOW,
        NOW + timedelta(seconds=5),
    ]
    ib.cancelHistoricalData(live)
    assert ib.run(until(lambda: not gw.gateway.open_requests)) is None


def test_cancel_of_a_finished_request_gets_366(ib):
    done = ib.reqHistoricalData(AAPL, JULY_3_CLOSE, "1 D", "1 hour", "TRADES", True, 2)
    code, text = request_error(ib, _cancel(ib, done.reqId))
    assert code == 366 and text.startswith("No historical data query found for ticker id")


async def _cancel(ib, req_id: int) -> None:
    """Send the cancel, then stay pending: only the error reply ends the wait."""
    ib.client.cancelHistoricalData(req_id)
    await asyncio.Event().wait()


def test_bars_are_the_same_for_any_client(gateway, connect):
    first, second = connect(gateway), connect(gateway)
    assert bars(first, size="15 mins") == bars(second, size="15 mins")


def test_contract_by_con_id_only(ib):
    assert bars(ib, contract=Contract(conId=265598, exchange="SMART")) == bars(ib)


def test_cancelling_a_request_in_flight_is_confirmed_with_162(make_gateway, connect):
    ib = connect(make_gateway(soft_throttle_bars_per_second=1.0))  # 7 bars take 7 s to answer

    [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))

    async def request_then_cancel():
        req_id = ib.client.getReqId()
        ib.client.reqHistoricalData(
            req_id, aapl, JULY_3_CLOSE, "1 D", "1 hour", "TRADES", True, 2, False, []
        )
        ib.client.cancelHistoricalData(req_id)
        await asyncio.Event().wait()

    code, text = request_error(ib, request_then_cancel())
    assert code == 162
    assert text.startswith(
        "Historical Market Data Service error message:API historical data query cancelled:"
    )
