"""`ibw gateway --replay DAY [--speed N]` (issue 14): the embedded gateway replays a regular
session, so real-time bars stream and a market order fills whatever the hour or weekday the test
runs on; a day that was no session, or a speed that is none, is one sentence."""

from __future__ import annotations

import signal
import subprocess
from datetime import date

import pytest
from ib_async import IB, MarketOrder, Stock

from cli.main import main
from tests.kit.processes import IBW, ROOT, OutputWatcher, free_port
from tests.kit.waiting import ib_until


@pytest.mark.slow  # a real `ibw gateway` process
def test_a_replayed_session_streams_bars_and_fills_a_market_order(tmp_path):
    port = free_port()
    command = [*IBW, "gateway", "--port", str(port), "--replay", "2024-07-10", "--speed", "10"]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        output = OutputWatcher(proc)
        ib = IB()
        try:
            output.wait_for("listening on", timeout=60)
            ib.connect("127.0.0.1", port, clientId=7, timeout=10)
            [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
            bars = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
            ib_until(ib, lambda: len(bars) >= 2, "two 5-s bars of the replayed session")
            assert {bar.time.date() for bar in bars} == {date(2024, 7, 10)}
            assert bars[0].time.hour == 13 and bars[0].time.minute >= 30  # 09:30 New York, UTC
            trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
            ib_until(ib, lambda: trade.orderStatus.status == "Filled", "the market order's fill")
            assert sum(fill.execution.shares for fill in trade.fills) == 10
            ib.cancelRealTimeBars(bars)
        finally:
            ib.disconnect()
            proc.send_signal(signal.SIGTERM)  # by its pid
            proc.wait(timeout=30)
        log = output.finish()
    assert "replaying 2024-07-10 09:30 New York at 10x the real pace" in log


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--replay", "2024-07-06"], "2024-07-06 (Saturday) is not a trading day of the US "
         "exchanges; give a weekday they were open, e.g. 2024-07-10"),
        (["--replay", "2024-07-04 10:00"], "2024-07-04 (Thursday) is not a trading day"),
        (["--replay", "July 10"], "'July 10' is not a day; write YYYY-MM-DD or 'YYYY-MM-DD HH:MM'"),
        (["--replay", "2024-07-10", "--speed", "0"], "'0' is not a speed; give a number above 0"),
        (["--replay", "2024-07-10", "--speed", "fast"], "'fast' is not a speed"),
    ],
)  # fmt: skip
def test_a_replay_that_cannot_run_is_one_sentence_before_anything_starts(capsys, args, sentence):
    with pytest.raises(SystemExit) as refused:
        main(["gateway", "--port", "0", *args])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err


def test_a_speed_without_a_replay_is_one_sentence(capsys):
    assert main(["gateway", "--port", "0", "--speed", "10"]) == 2
    assert capsys.readouterr().err.strip() == (
        "--speed needs --replay DAY: the wall clock runs at its own pace."
    )
