"""IB's request rules through ib_async: every error code the gateway enforces, with its text."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from ib_async import ContFuture, Forex, Future, Option, Stock

from ibsim.clock import ManualClock
from ibsim.config import PacingRules
from tests.kit.gateway import NOW, RELAXED, request_error

AAPL = Stock("AAPL", "SMART", "USD")
END = "20240703-20:00:00"


def error_for(ib, contract=AAPL, end=END, duration="1 D", size="1 min", what="TRADES", rth=True,
              fmt=1, keep=False) -> tuple[int, str]:  # fmt: skip
    return request_error(
        ib, ib.reqHistoricalDataAsync(contract, end, duration, size, what, rth, fmt, keep, [], 30)
    )


VALIDATION = "Error validating request.-'bP' : cause - "
HMDS = "Historical Market Data Service error message:"


@pytest.mark.parametrize(
    ("kwargs", "cause"),
    [
        ({"size": "7 mins"}, "Historical data bar size setting is invalid. Legal ones are: 1 secs"),
        ({"size": "1 sec"}, "Historical data bar size setting is invalid."),
        ({"duration": "5 X"}, "historical data request duration format is integer{SPACE}unit"),
        ({"duration": "5D"}, "historical data request duration format is integer{SPACE}unit"),
        ({"duration": ""}, "Historical data request duration not specified."),
        ({"duration": "10 S"}, "Historical data requested duration is invalid."),
        ({"duration": "0 D"}, "Historical data requested duration is invalid."),
        ({"duration": "90000 S"}, "greater than 86400 seconds rejected."),
        ({"duration": "400 D"}, "longer than 365 days must be made in years."),
        ({"duration": "53 W"}, "longer than 52 weeks must be made in years."),
        ({"duration": "13 M"}, "longer than 12 months must be made in years."),
        ({"duration": "31 Y"}, "Historical data request for 31 year(s) rejected. Max API Backfill"),
        ({"what": "FOO"}, "What to show value of FOO rejected."),
        ({"contract": Forex("EURUSD"), "what": "TRADES"}, "What to show value of TRADES rejected."),
        ({"what": "ADJUSTED_LAST"}, "End date not supported with adjusted last"),
        (
            {"what": "ADJUSTED_LAST", "end": "", "size": "1 week", "duration": "1 Y"},
            "Multi day bar size not supported with adjusted last",
        ),
        ({"fmt": 5}, "Date formatting selection of 5 rejected."),
        ({"keep": True}, "End date not supported with live updates"),
        ({"keep": True, "end": "", "what": "BID_ASK"}, "Source price not supported with live"),
    ],
)
def test_321_validation_errors(ib, kwargs, cause):
    code, text = error_for(ib, **kwargs)
    assert code == 321
    assert text.startswith(VALIDATION) and cause in text


@pytest.mark.parametrize(("size", "duration"), [("1 secs", "2001 S"), ("5 secs", "3601 S"),
                                                ("30 secs", "1 D"), ("1 secs", "1 D")])  # fmt: skip
def test_162_time_length_exceeded_for_small_bars(ib, size, duration):
    assert error_for(ib, size=size, duration=duration, end="20240709-15:00:00") == (
        162,
        HMDS + "Time length exceed max.",
    )


def test_the_step_table_allows_its_maximum(ib):
    bars = ib.reqHistoricalData(AAPL, "20240709-15:00:00", "2000 S", "1 secs", "TRADES", True, 2)
    assert len(bars) == 2000


def test_162_no_data_before_the_head_timestamp(ib):
    tsla = Stock("TSLA", "SMART", "USD")
    code, text = error_for(ib, contract=tsla, end="20090101-00:00:00", duration="1 M", size="1 day")
    assert code == 162
    assert text == HMDS + "HMDS query returned no data: TSLA@SMART Trades"


def test_162_small_bars_older_than_six_months(ib):
    code, text = error_for(ib, size="30 secs", duration="1800 S", end="20231201-16:00:00")
    assert code == 162 and "30 secs or less" in text


def test_10339_continuous_future_with_an_end_date(ib):
    code, text = error_for(ib, contract=ContFuture("ES", "CME"))
    assert code == 10339
    assert text == "Setting end date/time for continuous future security type is not allowed"


def test_10314_unreadable_end_date(ib):
    code, text = error_for(ib, end="2024-07-03")
    assert code == 10314 and text.startswith("End Date/Time: The date, time, or time-zone")


def test_200_unknown_contract(ib):
    code, text = error_for(ib, contract=Stock("NOPE", "SMART", "USD"))
    assert code == 200 and "No security definition has been found" in text


def test_166_future_expired_more_than_two_years_ago(ib):
    old = Future("ES", "20220318", "CME", includeExpired=True)
    assert error_for(ib, contract=old, end="", duration="1 M", size="1 day") == (
        166,
        "HMDS Expired Contract Violation",
    )


def test_166_no_history_for_expired_options(make_gateway, connect):
    clock = ManualClock(NOW)
    ib = connect(make_gateway(clock=clock))
    [option] = ib.qualifyContracts(Option("SPY", "20240712", 560, "C", "SMART"))
    assert ib.reqHistoricalData(option, "", "1 D", "1 hour", "TRADES", True, 2)
    clock.advance(timedelta(days=7).total_seconds())
    assert error_for(ib, contract=option, end="", size="1 hour")[0] == 166


def test_322_beyond_the_open_request_cap(make_gateway, connect):
    ib = connect(make_gateway(pacing=PacingRules(**{**RELAXED.__dict__, "max_open": 3})))
    subscriptions = [
        ib.reqHistoricalData(AAPL, "", "1 D", "1 min", what, True, 2, True)
        for what in ("TRADES", "MIDPOINT", "BID")
    ]
    assert all(subscriptions)
    code, text = error_for(ib, end="", what="ASK", keep=True)
    assert code == 322
    assert text.endswith("Only 3 simultaneous API historical data requests allowed.")
    ib.cancelHistoricalData(subscriptions[0])
    assert ib.reqHistoricalData(AAPL, END, "1 D", "1 hour", "TRADES", True, 2)


def test_unknown_message_ids_and_bad_fields_get_error_320(ib):
    code, text = request_error(ib, _send(ib, [20, 999, "x"]))
    assert code == 320 and "not an integer" in text


async def _send(ib, fields) -> None:
    ib.client.send(*fields)
    await asyncio.Event().wait()


def test_an_answer_too_big_for_one_message_is_refused_as_too_long(ib):
    # A year of one-minute bars with extended hours: 241,560 bars, over the 16 MiB frame limit.
    code, text = error_for(ib, end="20240709-00:00:00", duration="1 Y", rth=False)
    assert (code, text) == (162, HMDS + "Time length exceed max.")
