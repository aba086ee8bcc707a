"""The live streams against the embedded gateway, its clock running 20 times faster than the
wall: bars equal IB's historical 5-s bars, and IB's faults (1101, 1102, a dropped socket, a
stall, a kill -9) end with every bar of the period in the lake exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from ib_async import IB

from ibsim.clock import ShiftedClock
from live.config import LiveConfig
from live.streams import StreamManager, resolve_streams
from tests.kit.gateway import NOW
from tests.kit.waiting import until_disconnected
from warehouse import live_streams as lake
from warehouse.catalog import connect_readonly

WAIT = 20.0  # real seconds any one condition may take
STREAMS = [
    {"symbol": "AAPL", "ticks": True, "bars": True},
    {"symbol": "EUR.USD", "sec_type": "CASH", "ticks": True, "bars": True},
]
CONFIG = LiveConfig.parse({"streams": STREAMS, "stale_after": 10, "flush_every": 0.2})
AAPL, EUR = 265598, 12087792


@pytest.fixture(autouse=True)
def fast_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """IB's pacing windows compressed: the refills and resubscriptions here come in bursts."""
    monkeypatch.setenv("IBW_PACING_SCALE", "0.001")


@pytest.fixture
def fast_gateway(make_gateway):
    return make_gateway(clock=ShiftedClock(NOW, speed=20))


class Service:
    """What live.service does around the manager: route IB's errors, flush, watch."""

    def __init__(self, ib: IB, home: Path, config: LiveConfig = CONFIG) -> None:
        self.ib = ib
        self.manager = StreamManager(ib, resolve_streams(home, config), home, config)
        ib.errorEvent += self.on_error

    def on_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        self.manager.on_error(req_id, code, text)

    def start(self) -> None:
        self.ib.run(self._start())

    async def heartbeat(self) -> None:
        """The service's reqCurrentTime, which keeps the manager's gateway clock."""
        with contextlib.suppress(ConnectionError, TimeoutError):
            now = await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), 5)
            self.manager.clock.observe(now.timestamp() + 0.5)

    async def _start(self) -> None:
        await self.heartbeat()
        await self.manager.subscribe_all()
        await self.manager.refill()

    def run_until(self, done: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        self.ib.run(self._run_until(done, timeout))
        assert done(), f"not within {timeout} s: {what}"

    async def _run_until(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            await self.manager.flush()
            if self.ib.isConnected():
                await self.heartbeat()
                await self.manager.watch()
            await asyncio.sleep(0.1)
        await self.manager.flush()

    def stream(self, con_id: int) -> dict:
        return next(s for s in self.manager.health()["streams"] if s["con_id"] == con_id)

    def stored(self, con_id: int) -> int:
        return self.stream(con_id)["bars"]

    def settle(self, extra_bars: int = 4, con_ids: tuple[int, ...] = (AAPL, EUR)) -> None:
        """Let each stream add a few bars, then wait for the refills they call for."""
        target = {c: self.stored(c) + extra_bars for c in con_ids}
        self.run_until(lambda: all(self.stored(c) >= n for c, n in target.items()), "bars flow")
        self.ib.run(self.manager.refill())
        self.ib.run(self._run_until(lambda: False, 0.3))


def stored_bars(home: Path, con_id: int) -> pl.DataFrame:
    return lake.read_day(home, lake.BARS, NOW.date()).filter(pl.col("con_id") == con_id)


def history(ib: IB, service: Service, con_id: int, first: int, last: int) -> pl.DataFrame:
    """The gateway's historical 5-s bars from `first` to `last` (bar starts), as stored."""
    stream = service.manager.states[con_id].stream
    end = datetime.fromtimestamp(last + 5, UTC).strftime("%Y%m%d-%H:%M:%S")
    duration = f"{max(30, last + 5 - first)} S"
    bars = ib.reqHistoricalData(
        stream.contract(), end, duration, "5 secs", stream.what_to_show, False, 2
    )
    quotes = stream.what_to_show == "MIDPOINT"
    frame = pl.DataFrame({
        "time": [int(b.date.timestamp()) for b in bars],
        "open": [b.open for b in bars], "high": [b.high for b in bars],
        "low": [b.low for b in bars], "close": [b.close for b in bars],
        "volume": [None if quotes else float(b.volume) for b in bars],
        "wap": [None if quotes else b.average for b in bars],
        "count": [None if quotes else b.barCount for b in bars],
    }, schema_overrides={"volume": pl.Float64, "wap": pl.Float64, "count": pl.Int64})  # fmt: skip
    return frame.filter(pl.col("time").is_between(first, last))


def assert_complete(ib: IB, service: Service, home: Path) -> None:
    """Every bar from the first stored to the last, once, equal to the gateway's history."""
    for con_id in (AAPL, EUR):
        stored = stored_bars(home, con_id).with_columns(pl.col("time").dt.epoch("s"))
        assert stored.height, f"no bars for {con_id}"
        assert stored.get_column("time").is_duplicated().sum() == 0, "a bar was written twice"
        first, last = stored["time"].min(), stored["time"].max()
        assert stored.height == (last - first) // 5 + 1, f"{con_id}: a gap is left"
        expected = history(ib, service, con_id, first, last)
        got = stored.select(expected.columns).sort("time")
        assert got.equals(expected), f"{con_id}: stored bars differ from IB's history"


def test_streamed_bars_equal_history_and_ticks_land(
    fast_gateway, connect, seeded_home, monkeypatch
):
    monkeypatch.setattr("live.lake_writer.COMPACT_EVERY", 0.0)  # merge the flush files as they come
    ib = connect(fast_gateway)
    service = Service(ib, seeded_home)
    service.start()
    service.settle(6)
    assert_complete(ib, service, seeded_home)
    names = [f.name for f in lake.day_files(seeded_home, lake.BARS, NOW.date())]
    assert any(n.startswith(lake.COMPACTED_PREFIX) for n in names)
    ticks = lake.read_day(seeded_home, lake.TICKS, NOW.date())
    assert set(ticks.get_column("con_id")) == {AAPL, EUR}
    eur = ticks.filter(pl.col("con_id") == EUR)
    assert eur.get_column("last").is_null().all() and eur.get_column("bid").is_not_null().all()
    health = service.manager.health()
    assert health["totals"]["ok"] == 2
    assert all(s["subscribed"] and s["state"] == "ok" for s in health["streams"])
    con = connect_readonly(seeded_home)  # the first flush made the catalog's views
    try:
        dupes = "SELECT con_id, time FROM live_bars GROUP BY ALL HAVING count(*) > 1"
        assert con.sql(dupes).fetchall() == []
        assert con.sql("SELECT count(*) FROM live_ticks").fetchall() == [(ticks.height,)]
    finally:
        con.close()


def test_1101_resubscribes_and_1102_keeps_streams_and_both_gaps_are_refilled(
    fast_gateway, connect, seeded_home
):
    ib = connect(fast_gateway)
    service = Service(ib, seeded_home)
    service.start()
    service.settle(2)
    for data_kept in (False, True):
        fast_gateway.call(fast_gateway.gateway.connectivity_lost)
        service.run_until(lambda: service.stream(AAPL)["state"] == "waiting", "1100 arrives")
        ib.sleep(0.5)  # ten gateway seconds without data
        fast_gateway.call(fast_gateway.gateway.connectivity_restored, data_kept)
        service.settle(3)
    # 1101 dropped every stream at the gateway: each was requested again; 1102 kept them
    assert [service.stream(c)["resubscribes"] for c in (AAPL, EUR)] == [1, 1]
    assert all(service.stream(c)["refilled"] >= 2 for c in (AAPL, EUR))
    assert_complete(ib, service, seeded_home)


def test_1102_resubscribes_a_stream_that_stays_silent(fast_gateway, connect, seeded_home):
    ib = connect(fast_gateway)
    patient = LiveConfig.parse({"streams": STREAMS, "stale_after": 600})  # no stale check first
    service = Service(ib, seeded_home, patient)
    service.start()
    service.settle(2)
    fast_gateway.call(fast_gateway.gateway.connectivity_lost)
    service.run_until(lambda: service.stream(AAPL)["state"] == "waiting", "1100 arrives")
    ib.cancelRealTimeBars(service.manager.states[AAPL].bar_list)  # lost behind its back
    fast_gateway.call(fast_gateway.gateway.connectivity_restored, True)
    service.run_until(lambda: service.stream(AAPL)["resubscribes"] == 1, "AAPL resubscribed")
    assert service.stream(EUR)["resubscribes"] == 0
    service.settle(3)
    assert_complete(ib, service, seeded_home)


def test_a_dropped_socket_is_refilled_after_the_reconnect(fast_gateway, connect, seeded_home):
    ib = connect(fast_gateway)
    service = Service(ib, seeded_home)
    service.start()
    service.settle(2)
    client_id = ib.client.clientId
    fast_gateway.call(fast_gateway.gateway.drop_clients)
    until_disconnected(ib)
    ib.connect("127.0.0.1", fast_gateway.port, clientId=client_id, timeout=10)
    service.start()  # what live.service does after every reconnect
    service.settle(3)
    assert_complete(ib, service, seeded_home)


def test_a_stalled_stream_is_resubscribed_as_stale(fast_gateway, connect, seeded_home):
    ib = connect(fast_gateway)
    service = Service(ib, seeded_home)
    service.start()
    service.settle(2)
    # the manager measures the gateway's pace to tell the time while the gateway is silent
    service.run_until(lambda: service.manager.clock.rate > 10, "the clock's pace measured")
    fast_gateway.call(fast_gateway.gateway.stall, 2.5)  # 50 gateway seconds of silence
    service.run_until(
        lambda: all(service.stream(c)["stale_resubscribes"] >= 1 for c in (AAPL, EUR)),
        "stale streams resubscribed",
    )
    service.settle(3)
    assert all(service.stream(c)["state"] == "ok" for c in (AAPL, EUR))
    assert_complete(ib, service, seeded_home)


def test_after_a_kill_the_lake_is_the_truth(fast_gateway, connect, seeded_home):
    first = connect(fast_gateway)
    killed = Service(first, seeded_home)
    killed.start()
    killed.settle(3)
    first.run(asyncio.sleep(0.5))  # bars buffered but never flushed: the kill loses them
    first.errorEvent -= killed.on_error
    first.disconnect()
    first.sleep(0.5)
    stored_before = stored_bars(seeded_home, AAPL).height

    ib = connect(fast_gateway)
    service = Service(ib, seeded_home)
    service.start()
    assert service.stored(AAPL) >= 1  # the refill reached back to the crash at once
    service.settle(3)
    assert stored_bars(seeded_home, AAPL).height > stored_before
    assert_complete(ib, service, seeded_home)


def test_no_market_data_line_left_is_reported_not_retried(make_gateway, connect, seeded_home):
    gw = make_gateway(clock=ShiftedClock(NOW, speed=20), market_data_lines=3)
    ib = connect(gw)
    service = Service(ib, seeded_home)
    service.start()
    service.run_until(lambda: service.stream(EUR)["state"] == "error", "101 arrives")
    service.settle(4, con_ids=(AAPL,))  # several watches later
    eur = service.stream(EUR)
    assert (eur["code"], eur["resubscribes"], eur["subscribed"]) == (101, 0, False)
    assert eur["ticks"] > 0  # its ticks hold a line; its bars found none
    assert service.stream(AAPL)["state"] == "ok"


def test_missing_runs_stay_inside_sessions() -> None:
    from datetime import timedelta

    from ibkr.planner import Session
    from live.refill import missing_runs

    t0 = int(NOW.timestamp())
    session = Session(NOW.date(), NOW, NOW + timedelta(seconds=60))
    have = {t0 + 10, t0 + 15, t0 + 40}
    assert missing_runs([session], t0 - 30, t0 + 100, have) == [
        (t0, t0 + 5), (t0 + 20, t0 + 35), (t0 + 45, t0 + 55)
    ]  # fmt: skip
    assert missing_runs([session], t0 + 1, t0 + 9, set()) == [(t0 + 5, t0 + 5)]
    assert missing_runs([], t0, t0 + 100, set()) == []


def test_a_long_gap_takes_several_requests_each_covering_its_part() -> None:
    from ibkr.durations import DurationTable
    from ibkr.planner import Series
    from live.refill import covered, requests_for

    t0 = int(NOW.timestamp())
    series = Series(AAPL, "STK", "SMART", "5 secs", "TRADES", False)
    last = t0 + 2 * 3600 + 100  # more than one 3600 S request
    requests = requests_for(series, t0, last, NOW.replace(hour=23), DurationTable.default())
    assert len(requests) == 3
    parts = [covered(r, t0, last) for r in requests]
    assert set().union(*parts) == set(range(t0, last + 5, 5))
    assert sum(len(p) for p in parts) == len(set().union(*parts))  # no bar asked twice
    assert covered(requests_for(series, t0, t0, NOW, DurationTable.default())[0], t0, t0) == {t0}
