"""IB's request rules as pure functions: parsing and limits, without a socket."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibsim.market import rules
from ibsim.market.errors import IBError


@pytest.mark.parametrize(
    ("text", "when", "implied"),
    [
        ("20240703-17:00:00", datetime(2024, 7, 3, 17, tzinfo=UTC), False),
        ("20240703 13:00:00 US/Eastern", datetime(2024, 7, 3, 17, tzinfo=UTC), False),
        ("20240703 12:00:00 America/Chicago", datetime(2024, 7, 3, 17, tzinfo=UTC), False),
        ("20240703 17:00:00 UTC", datetime(2024, 7, 3, 17, tzinfo=UTC), False),
        ("20240703 13:00:00", datetime(2024, 7, 3, 17, tzinfo=UTC), True),
        ("20240703  13:00:00", datetime(2024, 7, 3, 17, tzinfo=UTC), True),
        ("", None, False),
    ],
)
def test_end_date_forms(text, when, implied):
    end = rules.parse_end(text)
    assert (end.when, end.implied_zone) == (when, implied)


@pytest.mark.parametrize("text", ["2024-07-03", "20240703-25:00:00", "20240703 10:00:00 Mars/Base"])
def test_unreadable_end_dates_get_10314(text):
    with pytest.raises(IBError) as error:
        rules.parse_end(text)
    assert error.value.code == 10314


def test_soft_throttle_grows_with_the_answer_and_spares_small_bars():
    assert rules.soft_throttle_delay(1_000, 60, 25_000.0) < rules.soft_throttle_delay(
        100_000, 60, 25_000.0
    )
    assert rules.soft_throttle_delay(100_000, "day", 25_000.0) > 0
    assert rules.soft_throttle_delay(2_000, 1, 25_000.0) == 0.0
    assert rules.soft_throttle_delay(100_000, 60, 0.0) == 0.0


@given(st.integers(1, 100_000), st.sampled_from("SDWMY"))
def test_durations_parse_or_fail_with_321(count, unit):
    try:
        duration = rules.parse_duration(f"{count} {unit}")
        rules.check_duration_limits(duration, max_years=30)
    except IBError as error:
        assert error.code == 321
        assert count > {"S": 86_400, "D": 365, "W": 52, "M": 12, "Y": 30}[unit] or count < 30
    else:
        assert duration.count == count and duration.unit == unit


def test_step_table_is_the_single_source_of_small_bar_limits():
    for seconds, span in rules.MAX_SMALL_BAR_SPAN.items():
        rules.check_step(seconds, rules.Duration(span, "S"))
        with pytest.raises(IBError):
            rules.check_step(seconds, rules.Duration(span + 1, "S"))
    rules.check_step(60, rules.Duration(365, "D"))  # bars of a minute or more: no step limit
