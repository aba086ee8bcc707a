"""Which sessions a series asks for (issue 14): a history in days counts trading sessions, and
`--start/--end` bound the sessions in each contract's own exchange zone. Pure: the calendars of
exchange-calendars and IB's venue hours, no gateway."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from engines.bar_series import Span, Target
from ibkr.universe import BarSpec, parse_bar_spec
from tests.kit.gateway import NOW  # Wednesday 2024-07-10, 11:00 New York

ONE_MIN = parse_bar_spec({"bar_size": "1 min", "history": "5d"}, "test")


def aapl(spec: BarSpec = ONE_MIN, span: Span | None = None) -> Target:
    return Target(265598, "AAPL", "STK", "SMART", "NASDAQ", "USD", None, spec, span or Span())


def days(target: Target) -> list[date]:
    return [s.day for s in target.expected(NOW, None)]


def test_five_days_of_history_are_the_last_five_sessions_not_five_calendar_days():
    # 07-04 is a holiday and 07-06/07 a weekend: five calendar days back hold three sessions
    assert days(aapl()) == [date(2024, 7, d) for d in (2, 3, 5, 8, 9)]
    weeks = parse_bar_spec({"bar_size": "1 min", "history": "1w"}, "test")
    assert not weeks.in_sessions  # weeks, months and years stay calendar spans
    assert days(aapl(weeks)) == [date(2024, 7, d) for d in (3, 5, 8, 9)]


def test_start_and_end_dates_take_their_sessions_whole():
    span = Span(date(2024, 7, 1), date(2024, 7, 3))
    assert days(aapl(span=span)) == [date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3)]


def test_an_end_alone_counts_the_history_back_from_it():
    assert days(aapl(span=Span(end=date(2024, 7, 3)))) == [
        date(2024, 6, 26), date(2024, 6, 27), date(2024, 6, 28), date(2024, 7, 1),
        date(2024, 7, 2), date(2024, 7, 3),
    ][-5:]  # fmt: skip


@pytest.mark.parametrize(
    ("span", "expected"),
    [  # times are the exchange's: 12:00 New York is inside the 07-08 session
        (Span(datetime(2024, 7, 8, 12, 0), None), [date(2024, 7, 8), date(2024, 7, 9)]),
        (Span(datetime(2024, 7, 8, 16, 0), None), [date(2024, 7, 9)]),
        (Span(None, datetime(2024, 7, 9, 12, 0)), [date(2024, 7, d) for d in (1, 2, 3, 5, 8)]),
        (Span(None, datetime(2024, 7, 9, 16, 0)), [date(2024, 7, d) for d in (2, 3, 5, 8, 9)]),
    ],
)
def test_times_keep_the_sessions_closing_after_the_start_and_by_the_end(span, expected):
    assert days(aapl(span=span)) == expected


def test_a_time_is_read_in_the_contracts_own_zone():
    # 15:30 is after the CME's 15:00 Chicago close of 07-09 (20:00 UTC), but before Nasdaq's
    # 16:00 New York close (also 20:00 UTC): the same words, each exchange's own clock
    span = Span(None, datetime(2024, 7, 9, 15, 30))
    es = Target(551601503, "ESU4", "FUT", "CME", "", "USD", date(2024, 9, 20), ONE_MIN, span)
    assert [s.day for s in es.expected(NOW, None)][-1] == date(2024, 7, 9)
    assert days(aapl(span=span))[-1] == date(2024, 7, 8)


def test_an_end_after_now_stops_at_the_last_closed_session():
    span = Span(date(2024, 7, 8), date(2030, 1, 1))
    assert days(aapl(span=span)) == [date(2024, 7, 8), date(2024, 7, 9)]  # 07-10 is still open
