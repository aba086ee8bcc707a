"""The market is a pure function of (contract, bar start, size, whatToShow), over real sockets.

Property tests: any chunking of requests returns the same bars, and coarser bars aggregate the
finer bars they cover exactly (open, high, low, close, volume, trade count).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ib_async import Contract

from ibsim.market.calendars import sessions
from ibsim.market.catalog import FIXED

CONTRACTS = [i for i in FIXED if i.sec_type in ("STK", "IND", "CASH")]
# one of each other product, with a whatToShow of its own: a bond's yields, crypto's trades
OTHERS = {"BOND": "YIELD_BID_ASK", "CRYPTO": "AGGTRADES", "FUND": "MIDPOINT", "CFD": "BID"}
OTHER_CONTRACTS = [next(i for i in FIXED if i.sec_type == kind) for kind in OTHERS]
FIRST_HALF_2024 = (datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 6, 29, tzinfo=UTC))


def closes(inst, rth: bool = True) -> list[datetime]:
    """Session closes of the contract's own venue in the first half of 2024."""
    table = sessions(inst.venue, rth)
    start, end = (int(t.timestamp()) for t in FIRST_HALF_2024)
    return [datetime.fromtimestamp(int(c), UTC) for c in table.closes if start <= c < end]


PROPERTY = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def fetch(ib, inst, end: datetime, duration: str, size: str, what: str, rth: bool = True):
    contract = Contract(conId=inst.con_id, exchange=inst.exchange)
    return list(
        ib.reqHistoricalData(contract, f"{end:%Y%m%d-%H:%M:%S}", duration, size, what, rth, 2)
    )


def what_for(inst) -> str:
    return "MIDPOINT" if inst.sec_type == "CASH" else "TRADES"


def same_bar(bar, group) -> bool:
    return (
        bar.open == group[0].open
        and bar.close == group[-1].close
        and bar.high == max(b.high for b in group)
        and bar.low == min(b.low for b in group)
        and bar.volume == (sum(b.volume for b in group) if bar.volume >= 0 else -1)
        and bar.barCount == (sum(b.barCount for b in group) if bar.barCount >= 0 else -1)
    )


@PROPERTY
@given(st.sampled_from(CONTRACTS), st.integers(4, 100), st.integers(2, 4))
def test_one_long_request_equals_its_chunks(ib, inst, last, days):
    what = what_for(inst)
    ends = closes(inst)[last - days + 1 : last + 1]
    whole = fetch(ib, inst, ends[-1], f"{days} D", "5 mins", what)
    chunks = []
    for end in ends:
        chunks += fetch(ib, inst, end, "1 D", "5 mins", what)
    assert whole and whole == chunks


@PROPERTY
@given(st.sampled_from(CONTRACTS), st.integers(0, 100), st.booleans())
def test_daily_bar_aggregates_its_minutes(ib, inst, index, rth):
    what = what_for(inst)
    end = closes(inst, rth)[index]
    [daily] = fetch(ib, inst, end, "1 D", "1 day", what, rth)
    minutes = fetch(ib, inst, end, "1 D", "1 min", what, rth)
    assert same_bar(daily, minutes)


@PROPERTY
@given(st.sampled_from(CONTRACTS), st.integers(1, 60),
       st.sampled_from(["5 secs", "15 secs", "1 min", "5 mins"]))  # fmt: skip
def test_coarse_bars_aggregate_one_second_bars(ib, inst, index, size):
    what = what_for(inst)
    end = f"{closes(inst)[-index] - timedelta(hours=2):%Y%m%d-%H:%M:%S}"  # mid-session
    contract = Contract(conId=inst.con_id, exchange=inst.exchange)
    ones = ib.reqHistoricalData(contract, end, "1800 S", "1 secs", what, True, 2)
    coarse = ib.reqHistoricalData(contract, end, "1800 S", size, what, True, 2)
    step = {"5 secs": 5, "15 secs": 15, "1 min": 60, "5 mins": 300}[size]
    assert len(ones) == 1800 and len(coarse) == 1800 // step
    for i, bar in enumerate(coarse):
        assert same_bar(bar, ones[i * step : (i + 1) * step])


@pytest.mark.parametrize("inst", OTHER_CONTRACTS, ids=list(OTHERS))
def test_other_products_chunk_and_aggregate_like_stocks(ib, inst):
    what, ends = OTHERS[inst.sec_type], closes(inst, rth=False)[40:43]
    whole = fetch(ib, inst, ends[-1], "3 D", "5 mins", what, rth=False)
    chunks = [bar for end in ends for bar in fetch(ib, inst, end, "1 D", "5 mins", what, False)]
    assert whole and whole == chunks
    [daily] = fetch(ib, inst, ends[0], "1 D", "1 day", what, rth=False)
    assert same_bar(daily, fetch(ib, inst, ends[0], "1 D", "1 min", what, rth=False))
