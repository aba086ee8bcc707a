"""The live alert conditions, driven by the embedded gateway's own faults over a real socket and
sent to a local HTTP receiver: IB's link lost (1100), a data farm broken (2103/2105), the daily
restart not recovered in time, a stale stream, a reconciliation difference and a risk breach.
Each fires once while it lasts and resolves once. Time is passed in, or waited on by progress
(a body received), never slept on."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
import yaml
from ib_async import IB, util

from engines.alerts import Alerter
from ibkr.connection import ConnectionSettings
from ibsim.clock import ShiftedClock
from live.alerting import LiveAlerts, farm_of
from live.config import AlertThresholds, LiveConfig, LiveConfigError
from live.service import LiveService
from live.streams import StreamManager, resolve_streams
from tests.kit.gateway import NOW
from tests.kit.waiting import WAIT, ib_until, until
from warehouse.alerts import read_alerts

THRESHOLDS = AlertThresholds(link_lost_after=60, farm_broken_after=30, reconnect_deadline=900)


class Fed:
    """LiveAlerts fed by a real ib_async connection's errorEvent, at times the test sets."""

    def __init__(self, ib: IB, alerts: LiveAlerts, address: str) -> None:
        self.ib, self.alerts, self.address = ib, alerts, address
        self.now = 0.0
        self.codes: list[int] = []
        alerts.on_connected(address, self.now)

        def on_error(req_id: int, code: int, text: str, contract: object) -> None:
            self.codes.append(code)
            alerts.on_error(address, code, text, self.now)

        ib.errorEvent += on_error

    def saw(self, *codes: int) -> None:
        ib_until(self.ib, lambda: set(codes) <= set(self.codes), f"IB's {codes} arrive")

    def check(self, at: float) -> None:
        self.now = at
        self.alerts.check(at)


@pytest.fixture
def fed(make_gateway, connect, tmp_path: Path, receiver):
    """A private gateway, a client on it, and its LiveAlerts sending to the receiver."""
    gw = make_gateway()
    alerts = LiveAlerts(Alerter(tmp_path, [receiver.url]), THRESHOLDS)
    return gw, Fed(connect(gw), alerts, "gw")


def test_link_lost_past_its_threshold_fires_once_and_resolves_once(
    fed, tmp_path: Path, receiver
) -> None:
    gw, feed = fed
    gw.call(gw.gateway.connectivity_lost)
    feed.saw(1100, 2103, 2105)
    feed.check(59)  # not yet
    feed.check(61)
    feed.check(62)  # still lost: nothing more
    assert receiver.wait_for(1) == [
        "ib-warehouse link_lost fired: gw: IB has been out of reach from the gateway at gw for "
        "61 s (1100): no order goes out and streams wait; check the gateway's internet "
        "connection and IB's system status."
    ]
    feed.check(200)  # the farms broken with the link say nothing of their own
    gw.call(gw.gateway.connectivity_restored, True)
    feed.saw(1102, 2104, 2106)
    feed.check(201)
    feed.check(202)
    messages = receiver.wait_for(2)
    assert len(messages) == 2 and messages[1].startswith("ib-warehouse link_lost resolved: gw")
    assert read_alerts(tmp_path)["state"].to_list() == ["fired", "resolved"]


def test_a_broken_farm_alerts_only_while_markets_are_open(fed, receiver) -> None:
    gw, feed = fed
    gw.call(gw.gateway.farm_status, 2103)
    feed.saw(2103)
    feed.alerts.observe([], [], markets_open=False, blocks={})
    feed.check(100)
    assert feed.alerts.alerter.active() == {}
    feed.alerts.observe([], [], markets_open=True, blocks={})
    feed.check(101)
    feed.check(102)
    assert receiver.wait_for(1) == [
        "ib-warehouse farm_broken fired: usfarm at gw: IB's market data farm usfarm has been "
        "broken for 101 s (2103) on the gateway at gw while markets are open: data may be "
        "missing; check IB's system status."
    ]
    gw.call(gw.gateway.farm_status, 2104)
    feed.saw(2104)
    feed.check(103)
    feed.check(104)
    messages = receiver.wait_for(2)
    assert len(messages) == 2 and messages[1].startswith("ib-warehouse farm_broken resolved")


def test_differences_and_risk_breaches_fire_once_and_resolve_once(fed, receiver) -> None:
    _, feed = fed
    differences = [  # one alert per kind, however many rows
        {"kind": "position", "subject": "DU1 265598", "detail": "IB 10, journal 0"},
        {"kind": "position", "subject": "DU1 756733", "detail": "IB 5, journal 0"},
    ]
    blocked = {"DU1 daily_loss": "DU1 lost 5000 USD today, past its 4000 limit."}
    feed.alerts.observe([], differences, markets_open=True, blocks=blocked)
    feed.check(1)
    feed.check(2)
    assert receiver.wait_for(2) == [
        "ib-warehouse reconciliation_difference fired: position: Reconciliation found 2 position "
        "difference(s) with the gateway: IB 10, journal 0 (and 1 more); see live_differences.",
        "ib-warehouse risk_breach fired: DU1 daily_loss: DU1 lost 5000 USD today, past its 4000 "
        "limit.",
    ]
    feed.alerts.observe([], [], markets_open=True, blocks={})  # unblocked
    feed.check(3)
    feed.check(4)
    assert [m.split(":")[0] for m in receiver.wait_for(4)[2:]] == [
        "ib-warehouse reconciliation_difference resolved",
        "ib-warehouse risk_breach resolved",
    ]


def test_a_stale_stream_alerts_until_its_data_comes_again(
    make_gateway, connect, seeded_home: Path, tmp_path: Path, receiver, monkeypatch
) -> None:
    """A real StreamManager on a gateway that stalls: the stream turns stale in session, is
    alerted once (however many stale resubscriptions follow) and resolved when data comes."""
    monkeypatch.setenv("IBW_PACING_SCALE", "0.001")  # resubscriptions come in a burst
    gw = make_gateway(clock=ShiftedClock(NOW, speed=20))  # a 5-s bar every 0.25 s
    ib = connect(gw)
    config = LiveConfig.parse({
        "streams": [{"symbol": "AAPL", "ticks": True, "bars": True}], "stale_after": 10,
    })  # fmt: skip
    manager = StreamManager(ib, resolve_streams(seeded_home, config), seeded_home, config)
    ib.errorEvent += lambda req_id, code, text, contract: manager.on_error(req_id, code, text)
    alerts = LiveAlerts(Alerter(tmp_path, [receiver.url]), THRESHOLDS)

    async def serve(done, what: str) -> None:
        """What the service does every second (the heartbeat, watch, the alert check), faster."""
        deadline = asyncio.get_running_loop().time() + WAIT
        while not done():
            assert asyncio.get_running_loop().time() < deadline, f"not within {WAIT} s: {what}"
            with contextlib.suppress(ConnectionError, TimeoutError):
                now = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
                manager.clock.observe(now.timestamp() + 0.5)
            await manager.watch()
            alerts.observe(manager.health()["streams"], [], markets_open=True, blocks={})
            await asyncio.to_thread(alerts.check, 0.0)
            await asyncio.sleep(0.05)

    def said(words: str) -> bool:
        return any(words in m for m in receiver.messages())

    async def scenario() -> None:
        await serve(lambda: manager.clock.now() is not None, "the gateway's time")
        await manager.subscribe_all()
        await serve(lambda: manager.clock.rate > 10, "bars flow and the clock's pace is known")
        gw.call(gw.gateway.stall, 2.5)  # 50 gateway seconds of silence
        await serve(lambda: said("stream_stale fired: AAPL"), "the stale stream alerted")
        await serve(lambda: said("stream_stale resolved: AAPL"), "data again, resolved")

    ib.run(scenario())
    assert manager.health()["streams"][0]["stale_resubscribes"] >= 1
    assert [m.split(": ")[0] for m in receiver.messages()] == [
        "ib-warehouse stream_stale fired",
        "ib-warehouse stream_stale resolved",
    ]


def test_farm_names_come_after_the_colon() -> None:
    assert farm_of("Market data farm connection is broken:usfarm") == "usfarm"
    assert farm_of("Sec-def data farm connection is OK:secdefnj ") == "secdefnj"


# ----------------------------------------------------------------------------- the config
def test_thresholds_are_read_strictly() -> None:
    base = "streams: [{symbol: AAPL, bars: true}]\n"
    assert LiveConfig.parse(yaml.safe_load(base)).alerts == AlertThresholds()
    config = LiveConfig.parse(yaml.safe_load(base + "alerts: {link_lost_after: 5}"))
    assert config.alerts == AlertThresholds(link_lost_after=5.0)
    for bad, word in (
        ("alerts: {link_lost: 5}", "'link_lost'"),
        ("alerts: {reconnect_deadline: 0}", "reconnect_deadline must be positive"),
        ("alerts: {farm_broken_after: soon}", "farm_broken_after must be a number"),
        ("alerts: 60", "expected a mapping"),
    ):
        with pytest.raises(LiveConfigError, match=word):
            LiveConfig.parse(yaml.safe_load(base + bad))


# ----------------------------------------------------------------------------- the service
def test_the_service_alerts_a_lost_link_and_a_late_restart(
    make_gateway, seeded_home: Path, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real LiveService: IB's link lost, then the daily restart held past the deadline; each
    alert comes once while it lasts and is resolved once after."""
    monkeypatch.setenv("IBW_ALERT_URLS", receiver.url)
    gw = make_gateway(clock=ShiftedClock(NOW))
    config = LiveConfig.parse({
        "streams": [{"symbol": "AAPL", "ticks": True, "bars": True}],
        "alerts": {"link_lost_after": 0.2, "farm_broken_after": 600, "reconnect_deadline": 0.3},
    })  # fmt: skip
    service = LiveService(ConnectionSettings(port=gw.port, client_id=44), seeded_home, config)
    address = f"127.0.0.1:{gw.port}"

    def said(*words: str) -> bool:
        return any(all(w in m for w in words) for m in receiver.messages())

    async def on_gateway(step) -> None:
        task = gw.call(asyncio.ensure_future, step)
        await until(task.done, "the gateway finishes the step", WAIT)
        task.result()

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.ensure_future(service.run(stop))
        try:
            await until(lambda: service.counters.connects == 1, "connected", WAIT)
            gw.call(gw.gateway.connectivity_lost)
            await until(lambda: said("link_lost fired", address), "link_lost fired", WAIT)
            gw.call(gw.gateway.connectivity_restored, True)
            await until(lambda: said("link_lost resolved"), "link_lost resolved", WAIT)

            await on_gateway(gw.gateway.go_down(0.0))
            await until(lambda: said("reconnect_overdue fired", address), "overdue", WAIT)
            await on_gateway(gw.gateway.come_up())
            await until(lambda: said("reconnect_overdue resolved"), "reconnected", WAIT)
        finally:
            stop.set()
            await asyncio.wait_for(running, WAIT)

    util.getLoop().run_until_complete(scenario())
    titles = [m.split(": ")[0] for m in receiver.messages()]
    assert titles == [
        "ib-warehouse link_lost fired",
        "ib-warehouse link_lost resolved",
        "ib-warehouse reconnect_overdue fired",
        "ib-warehouse reconnect_overdue resolved",
    ]
    assert set(read_alerts(seeded_home)["source"]) == {"live"}
