"""Faults of the embedded gateway seen by unmodified ib_async clients: IB's link lost (1100) and
restored with data kept (1102) or lost (1101), farm notices, dropped clients, stalls, and fault
scripts (IB's message codes 1100, 1101, 1102 and 2103-2106, and the daily restart).

The gateway's clock is a ManualClock, so which 5-second windows close during an outage is exact.
Only outcomes are asserted, each behind a bounded wait."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from time import monotonic

import pytest
from ib_async import IB, util

from ibsim import cli as gateway_cli
from ibsim.fault_script import Fault, FaultScriptError, load_faults, parse_faults
from ibsim.handlers.portfolio import Refreshed
from ibsim.server import GatewayThread
from tests.kit.gateway import NOW, Errors, stock, sync
from tests.kit.waiting import WAIT, ib_until, until_disconnected

LINK = {1100, 1101, 1102, 2103, 2104, 2105, 2106}


def session_of(gw: GatewayThread, ib: IB):
    return gw.call(lambda: gw.gateway.clients[ib.client.clientId])


def link_notices(seen: Errors) -> list[int]:
    return [code for req_id, code, _ in seen.seen if req_id == -1 and code in LINK | {399}]


def at(seconds: int):
    return NOW + timedelta(seconds=seconds)


class Stream:
    """A client with a market data line and 5-second bars on AAPL, counting ticker updates."""

    def __init__(self, ib: IB) -> None:
        self.ib = ib
        self.aapl = stock(ib, "AAPL")
        self.ticker = ib.reqMktData(self.aapl)
        self.bars = ib.reqRealTimeBars(self.aapl, 5, "TRADES", False)
        self.updates = 0
        self.ticker.updateEvent += self._count
        sync(ib)

    def _count(self, ticker) -> None:
        self.updates += 1

    def bar_times(self) -> list:
        return [bar.time for bar in self.bars]


def test_1100_stops_ticks_and_bars_and_1102_resumes_the_same_subscriptions(gw, clock, connect):
    ib = connect(gw)
    seen = Errors(ib)
    stream = Stream(ib)
    clock.advance(5)
    ib_until(ib, lambda: stream.bar_times() == [NOW], "the first bar")

    gw.call(gw.gateway.connectivity_lost)
    ib_until(ib, lambda: 2105 in link_notices(seen), "1100 and the farms broken")
    assert link_notices(seen) == [1100, 2103, 2105]
    updates = stream.updates
    clock.advance(10)  # the windows of NOW + 5 and NOW + 10 close while the link is down
    ib.sleep(0.3)
    assert stream.bar_times() == [NOW] and stream.updates == updates

    gw.call(gw.gateway.connectivity_restored, True)
    ib_until(ib, lambda: 2106 in link_notices(seen)[3:], "1102 and the farms OK")
    assert link_notices(seen)[3:] == [1102, 2104, 2106]
    clock.advance(5)
    ib_until(ib, lambda: len(stream.bars) == 2, "a bar after the outage")
    assert stream.bar_times() == [NOW, at(15)]  # the outage's windows are a gap, never sent
    ib_until(ib, lambda: stream.ticker.lastTimestamp == at(20), "ticks after the outage")


def test_1101_drops_every_stream_until_the_client_asks_again(gw, clock, connect):
    ib = connect(gw)
    seen = Errors(ib)
    stream = Stream(ib)
    live = ib.reqHistoricalData(
        stream.aapl, "", "60 S", "5 secs", "TRADES", False, formatDate=2, keepUpToDate=True
    )
    session = session_of(gw, ib)
    market = gw.call(
        lambda: [s for s in session.subscriptions.values() if not isinstance(s, Refreshed)]
    )
    assert (len(market), gw.call(lambda: set(session.streaming))) == (2, {live.reqId})

    gw.call(gw.gateway.connectivity_lost)
    gw.call(gw.gateway.connectivity_restored, False)
    ib_until(ib, lambda: 2106 in link_notices(seen), "1101")
    assert link_notices(seen) == [1100, 2103, 2105, 1101, 2104, 2106]
    assert gw.call(lambda: (session.subscriptions, session.streaming)) == ({}, set())
    updates = stream.updates
    clock.advance(10)
    ib.sleep(0.3)
    assert len(stream.bars) == 0 and stream.updates == updates  # dead, and nobody said so

    # a cancel of a dropped stream is news to the gateway; a new request streams again
    ib.cancelRealTimeBars(stream.bars)
    ib_until(ib, lambda: seen.of(stream.bars.reqId), "error 300")
    assert seen.of(stream.bars.reqId)[0][0] == 300
    again = ib.reqRealTimeBars(stream.aapl, 5, "TRADES", False)
    sync(ib)
    clock.advance(5)
    ib_until(ib, lambda: [bar.time for bar in again] == [at(10)], "bars after resubscribing")


def test_order_news_held_during_the_outage_arrives_after_the_restore_in_order(gw, connect):
    ib = connect(gw)
    seen = Errors(ib)
    session = session_of(gw, ib)
    gw.call(gw.gateway.connectivity_lost)
    for n in (1, 2, 3):  # what the order engine sends goes through notify
        gw.call(session.notify, 4, 2, -1, 399, f"Order Message: news {n}", "")
    sync(ib)
    assert [text for _, code, text in seen.seen if code == 399] == []
    gw.call(gw.gateway.connectivity_restored, True)
    ib_until(ib, lambda: len([c for _, c, _ in seen.seen if c == 399]) == 3, "the held news")
    assert link_notices(seen) == [1100, 2103, 2105, 1102, 2104, 2106, 399, 399, 399]
    texts = [text for _, code, text in seen.seen if code == 399]
    assert texts == [f"Order Message: news {n}" for n in (1, 2, 3)]


def test_a_client_connecting_during_the_outage_hears_the_farms_are_broken(gw, connect):
    gw.call(gw.gateway.connectivity_lost)
    ib = IB()
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    ib.connect("127.0.0.1", gw.port, clientId=741, timeout=WAIT)
    try:
        assert {2103, 2105} <= set(codes) and 2104 not in codes
    finally:
        ib.disconnect()


def test_drop_clients_hangs_up_and_the_gateway_keeps_listening(gw, connect):
    first, second = connect(gw, client_id=751), connect(gw, client_id=752)
    assert gw.call(gw.gateway.drop_clients, 751) == 1
    until_disconnected(first)
    assert second.isConnected() and second.reqCurrentTime()

    assert gw.call(gw.gateway.drop_clients) == 1
    until_disconnected(second)
    again = connect(gw, client_id=751)
    assert again.isConnected() and again.reqCurrentTime()
    assert gw.gateway.restarts == 0


def test_a_stall_answers_late_and_loses_the_windows_that_closed_meanwhile(gw, clock, connect):
    ib = connect(gw)
    stream = Stream(ib)
    clock.advance(5)
    ib_until(ib, lambda: stream.bar_times() == [NOW], "the first bar")
    session = session_of(gw, ib)

    assert gw.call(gw.gateway.stall, 1.0) == 1
    gw.call(session.notify, 4, 2, -1, 399, "Order Message: sent during the stall", "")
    clock.advance(10)  # two windows close while the gateway is stalled
    asked = ib.reqCurrentTime()  # waits for the stall to end, then is answered
    assert asked and not gw.call(lambda: session.stalled)
    ib_until(ib, lambda: stream.ticker.lastTimestamp == at(15), "ticks after the stall")
    clock.advance(5)
    ib_until(ib, lambda: len(stream.bars) == 2, "a bar after the stall")
    assert stream.bar_times() == [NOW, at(15)]


def test_farm_status_on_demand(gw, connect):
    ib = connect(gw)
    seen = Errors(ib)
    gw.call(gw.gateway.farm_status, 2108)
    ib_until(ib, lambda: any(code == 2108 for _, code, _ in seen.seen), "2108")
    assert seen.of(-1)[-1] == (
        2108, "Market data farm connection is inactive but should be available upon demand.usfarm"
    )  # fmt: skip
    with pytest.raises(ValueError, match="Farm status 9999 is unknown"):
        gw.call(gw.gateway.farm_status, 9999)


# ------------------------------------------------------------------- fault scripts
def test_a_fault_script_runs_its_faults_in_time(gw, connect):
    ib = connect(gw)
    seen = Errors(ib)
    script = parse_faults(
        [
            {"after": 0.1, "fault": "connectivity_lost"},
            {"after": 0.4, "fault": "connectivity_restored", "data_kept": False},
            {"after": 0.6, "every": 0.2, "fault": "farm_status", "code": 2107},
        ]
    )
    tasks = gw.call(gw.gateway.run_faults, script)
    ib_until(ib, lambda: [c for _, c, _ in seen.seen].count(2107) >= 2, "the script's faults")
    codes = [code for _, code, _ in seen.seen if code in LINK | {2107}]
    assert codes[:8] == [1100, 2103, 2105, 1101, 2104, 2106, 2107, 2107]
    assert sum(not task.done() for task in tasks) == 1  # only the repeating entry runs on


def test_a_gateway_runs_its_configured_script_from_the_start(make_gateway):
    script = parse_faults([{"after": 0.2, "fault": "restart", "refuse_for": 0.1}])
    gw = make_gateway(faults=script)
    deadline = monotonic() + WAIT
    while gw.gateway.restarts < 1:
        assert monotonic() < deadline, "the scripted restart did not happen"
        util.run(asyncio.sleep(0.05))


def test_fault_scripts_load_from_yaml(tmp_path):
    path = tmp_path / "faults.yml"
    path.write_text(
        "- {after: 30, fault: connectivity_lost}\n"
        "- {after: 35, fault: connectivity_restored, data_kept: false}\n"
        "- {every: 600, fault: drop_clients}\n"
        "- {after: 60, fault: stall, seconds: 10}\n"
        "- {after: 90, fault: restart, refuse_for: 5}\n"
    )
    assert load_faults(path) == (
        Fault("connectivity_lost", after=30.0),
        Fault("connectivity_restored", after=35.0, params=(("data_kept", False),)),
        Fault("drop_clients", every=600.0),
        Fault("stall", after=60.0, params=(("seconds", 10.0),)),
        Fault("restart", after=90.0, params=(("refuse_for", 5.0),)),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fault: connectivity_lost\n", "is not a list of faults"),
        ("- {after: 1, fault: explode}\n", "entry 1 names the fault 'explode', which is none of"),
        ("- {fault: connectivity_lost}\n", "entry 1 needs `after` or `every`"),
        ("- {after: -1, fault: connectivity_lost}\n", "`after: -1`, not a number of seconds"),
        ("- {after: 1, fault: stall}\n", "lacks the argument 'seconds' that stall needs"),
        ("- {after: 1, fault: stall, seconds: 1, how: hard}\n", "unknown argument 'how'"),
        ("- {after: 1, fault: connectivity_restored, data_kept: 2}\n", "not a bool"),
        ("- {after: 1, fault: farm_status, code: 2000}\n", "farm status code 2000"),
        ("- [after, 1\n", "is not valid YAML at line"),
    ],
)
def test_a_bad_fault_script_gets_one_sentence(tmp_path, text, message):
    path = tmp_path / "faults.yml"
    path.write_text(text)
    with pytest.raises(FaultScriptError) as error:
        load_faults(path)
    sentence = str(error.value)
    assert message in sentence and sentence.startswith(f"The fault script {path}")
    assert sentence.endswith(".") and "\n" not in sentence


def test_gateway_command_reports_a_bad_fault_script(tmp_path, capsys):
    assert gateway_cli.main(["--port", "0", "--faults", str(tmp_path / "none.yml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Cannot read the fault script") and err.count("\n") == 1
