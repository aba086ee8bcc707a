"""The coverage ledger: statuses per session, gaps as expected minus covered, retries, files."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.catalog import refresh_catalog
from warehouse.ledger import Series, gaps, read_all, read_series, record

AAPL_1MIN = Series(265598, "1 min", "TRADES", True)
NOW = datetime(2024, 7, 10, 15, tzinfo=UTC)
DAYS = [date(2024, 7, d) for d in (1, 2, 3, 5, 8, 9)]


def test_a_new_series_lacks_every_expected_session(tmp_path):
    assert gaps(DAYS, read_series(tmp_path, AAPL_1MIN), NOW) == DAYS


def test_complete_and_confirmed_empty_sessions_are_not_gaps(tmp_path):
    record(tmp_path, AAPL_1MIN, DAYS[:2], "complete", NOW)
    record(tmp_path, AAPL_1MIN, [DAYS[2]], "empty", NOW)
    assert gaps(DAYS, read_series(tmp_path, AAPL_1MIN), NOW) == DAYS[3:]


def test_transient_failures_back_off_then_come_back(tmp_path):
    for attempt, wait in ((1, 5), (2, 10), (3, 20)):
        ledger = record(tmp_path, AAPL_1MIN, [DAYS[0]], "failed", NOW, code=162, text="x")
        row = ledger.row(0, named=True)
        assert (row["attempts"], row["next_retry"]) == (attempt, NOW + timedelta(minutes=wait))
    assert gaps(DAYS, ledger, NOW) == DAYS[1:]
    assert gaps(DAYS, ledger, NOW + timedelta(minutes=21)) == DAYS


def test_permanent_failures_are_not_retried(tmp_path):
    ledger = record(
        tmp_path, AAPL_1MIN, [DAYS[0]], "failed", NOW, code=354, text="no data", permanent=True
    )
    assert gaps(DAYS, ledger, NOW + timedelta(days=365)) == DAYS[1:]


def test_success_after_failure_forgets_it(tmp_path):
    record(tmp_path, AAPL_1MIN, [DAYS[0]], "failed", NOW, code=162, text="x")
    ledger = record(tmp_path, AAPL_1MIN, [DAYS[0]], "complete", NOW)
    row = ledger.row(0, named=True)
    assert (row["status"], row["attempts"], row["code"], row["next_retry"]) == (
        "complete", 0, None, None,
    )  # fmt: skip


def test_series_are_kept_apart_and_rerecording_never_duplicates(tmp_path):
    other = Series(265598, "1 day", "TRADES", True)
    for _ in range(2):
        record(tmp_path, AAPL_1MIN, DAYS, "complete", NOW)
    record(tmp_path, other, DAYS[:1], "complete", NOW)
    assert read_series(tmp_path, AAPL_1MIN).height == len(DAYS)
    assert read_series(tmp_path, other).height == 1
    refresh_catalog(tmp_path)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        counts = con.sql("SELECT bar_size, count(*) FROM coverage GROUP BY 1 ORDER BY 1").fetchall()
    assert counts == [("1 day", 1), ("1 min", len(DAYS))]


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(DAYS), st.sampled_from(["complete", "empty", "failed"]))))
def test_gaps_are_expected_minus_covered(tmp_path_factory, events):
    home = tmp_path_factory.mktemp("ledger")
    final: dict[date, str] = {}
    for day, status in events:
        record(home, AAPL_1MIN, [day], status, NOW, code=162 if status == "failed" else None)
        final[day] = status
    later = NOW + timedelta(days=2)  # every backoff has expired
    covered = {d for d, s in final.items() if s in ("complete", "empty")}
    assert gaps(DAYS, read_series(home, AAPL_1MIN), later) == [d for d in DAYS if d not in covered]


def test_reading_every_series_at_once_equals_reading_each(tmp_path):
    from warehouse import heads

    now = datetime(2024, 7, 10, 21, tzinfo=UTC)
    a, b = Series(1, "1 min", "TRADES", True), Series(2, "1 day", "MIDPOINT", False)
    record(tmp_path, a, [date(2024, 7, 9), date(2024, 7, 10)], "complete", now)
    record(tmp_path, b, [date(2024, 7, 8)], "failed", now, code=162, text="x")
    every = read_all(tmp_path)
    assert set(every) == {a, b}
    for series in (a, b):
        assert every[series].equals(read_series(tmp_path, series))
    heads.write_head(tmp_path, 1, "TRADES", True, now, now)
    assert heads.read_all(tmp_path) == {(1, "TRADES", True): now}
    assert read_all(tmp_path / "nothing") == {} and heads.read_all(tmp_path / "nothing") == {}
