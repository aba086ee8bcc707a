"""The client's expected sessions agree with what the embedded gateway serves, venue by venue."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ibkr.exceptions import InvalidRequest
from ibkr.sessions import CME, IDEALPRO, NYMEX, US_INDICES, US_STOCKS, expected_sessions, hours_for
from ibsim.market.calendars import sessions as gateway_sessions

PAIRS = [
    ("us_equity", US_STOCKS),
    ("us_index", US_INDICES),
    ("cme_globex", CME),
    ("nymex_globex", NYMEX),
    ("fx_idealpro", IDEALPRO),
]


@pytest.mark.parametrize("use_rth", [True, False])
@pytest.mark.parametrize(("venue", "hours"), PAIRS)
def test_sessions_match_the_gateway(venue, hours, use_rth):
    table = gateway_sessions(venue, use_rth)
    first, last = date(2001, 1, 2), date(2030, 12, 31)
    served = [
        (d.astype(date), datetime.fromtimestamp(o, UTC), datetime.fromtimestamp(c, UTC))
        for d, o, c in zip(table.dates, table.opens.tolist(), table.closes.tolist(), strict=True)
        if first <= d.astype(date) <= last
    ]
    assert [tuple(s) for s in expected_sessions(hours, use_rth, first, last)] == served


def test_early_close_and_holiday():
    july = expected_sessions(US_STOCKS, True, date(2024, 7, 2), date(2024, 7, 5))
    assert [s.day for s in july] == [date(2024, 7, 2), date(2024, 7, 3), date(2024, 7, 5)]
    early = july[1]
    assert (early.open.hour, early.close.hour) == (13, 17)  # 09:30-13:00 New York, in UTC
    full = expected_sessions(US_STOCKS, False, date(2024, 7, 3), date(2024, 7, 3))[0]
    assert (full.open.hour, full.close.hour) == (8, 21)  # 04:00-17:00 New York


def test_fx_week_runs_sunday_evening_to_friday():
    week = expected_sessions(IDEALPRO, True, date(2024, 7, 6), date(2024, 7, 12))
    assert [s.day.weekday() for s in week] == [0, 1, 2, 3, 4]
    assert week[0].open == datetime(2024, 7, 7, 21, 15, tzinfo=UTC)  # Sunday 17:15 New York


@pytest.mark.parametrize(
    ("sec_type", "exchange", "primary", "hours"),
    [
        ("STK", "SMART", "NASDAQ", US_STOCKS),
        ("STK", "SMART", "ARCA", US_STOCKS),
        ("IND", "CBOE", "", US_INDICES),
        ("FUT", "CME", "", CME),
        ("CONTFUT", "NYMEX", "", NYMEX),
        ("CASH", "IDEALPRO", "", IDEALPRO),
    ],
)
def test_hours_follow_the_exchange(sec_type, exchange, primary, hours):
    assert hours_for(sec_type, exchange, primary) is hours


def test_an_unmapped_exchange_is_one_sentence():
    with pytest.raises(InvalidRequest, match=r"No trading calendar is known for STK on LSE: add"):
        hours_for("STK", "SMART", "LSE")
