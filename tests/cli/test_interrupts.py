"""`ibw backfill` cut short (issue 12): Ctrl-C, SIGTERM and a gateway that hangs up each end in
one line, never a traceback. The process is real, the gateway in-process with IB's pacing
compressed, and each fault lands after the gateway has admitted the k-th request."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from ibsim.server import GatewayThread
from tests.kit.gateway import PACING_SCALE
from tests.kit.processes import OutputWatcher, backfill_command, environment
from tests.kit.universe import write_universe
from warehouse import bars as bar_store
from warehouse import ledger
from warehouse.parquet import read_dataset

pytestmark = pytest.mark.slow  # real `ibw` processes, seconds to minutes each

ADMITTED = 12  # the fault lands once the gateway has admitted this many requests
AAPL = 265598


def wait_for_admitted(gw: GatewayThread, process: subprocess.Popen, count: int) -> None:
    """Until the gateway has admitted `count` requests (the backfill is mid-way), or 120 s."""
    deadline = time.monotonic() + 120
    while gw.gateway.pacer.admitted < count:
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the backfill never got going"
        time.sleep(0.01)


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_backfill_says_what_it_kept(
    compressed_gateway, start_backfill, seeded_home, stop, code
):
    process = start_backfill()
    wait_for_admitted(compressed_gateway, process, ADMITTED)
    process.send_signal(stop)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == code, output
    assert "Traceback" not in output and "Task" not in output
    said = re.fullmatch(
        rf"ibw backfill: stopped by {'Ctrl-C' if stop == signal.SIGINT else 'SIGTERM'}: kept "
        r"(\d+) answered requests?: (\d+) sessions?; \d+ partial \(not recorded\); [12] of 2 "
        r"series unfinished; run it again to continue\.",
        output.strip().splitlines()[-1],
    )
    assert said, output
    answered, kept = int(said.group(1)), int(said.group(2))
    assert answered >= ADMITTED - 4  # the head timestamps, and the request still in flight
    assert kept == read_dataset(seeded_home, "coverage").height > 0  # the ledger says the same


def test_sigterm_after_15_answers_keeps_every_session_they_finished(
    compressed_gateway, seeded_home, tmp_path
):
    """Issue 14's report: a backfill stopped by SIGTERM after 15 answered small-bar requests
    must keep what they brought. The signal goes when the 16th request's line is out, so 15
    answers have landed (the 16th may land too)."""
    bars = [{"bar_size": "30 secs", "history": "25d"}]
    universe = write_universe(tmp_path, bars=bars, entries=[{"symbol": "AAPL"}])
    env = environment(compressed_gateway.port, IBW_PACING_SCALE=str(PACING_SCALE))
    with subprocess.Popen(
        backfill_command(seeded_home, universe, "AAPL"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as process:  # fmt: skip
        try:
            watcher = OutputWatcher(process)
            watcher.wait_for("[16/", timeout=120)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 128 + signal.SIGTERM
            output = watcher.finish()
        finally:
            if process.poll() is None:
                process.kill()  # by its pid
                process.wait(timeout=30)
    said = re.fullmatch(
        r"ibw backfill: stopped by SIGTERM: kept (1[56]) answered requests: (\d+) sessions; "
        r"([01]) partial \(not recorded\); 1 of 1 series unfinished; run it again to continue\.",
        output.strip().splitlines()[-1],
    )
    assert said, output
    kept = int(said.group(2))
    key = ledger.Series(AAPL, "30 secs", "TRADES", True)
    held = ledger.read_series(seeded_home, key)
    assert kept >= 15 and held.height == kept and set(held["status"]) == {"complete"}
    stored = bar_store.read_series(seeded_home, key)
    assert set(stored["session_date"]) == set(held["session_date"])  # the lake holds them


def test_a_gateway_that_hangs_up_mid_backfill_is_one_sentence(compressed_gateway, start_backfill):
    process = start_backfill()
    wait_for_admitted(compressed_gateway, process, ADMITTED)
    compressed_gateway.call(compressed_gateway.gateway.drop_clients)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 1, output
    assert "Traceback" not in output and "Task exception was never retrieved" not in output
    *progress, said = output.strip().splitlines()
    assert said.startswith("ibw backfill: "), output  # one sentence, after the progress lines
    progress_line = r"\[\d+/\d+\] |waiting for IB's pacing|Asking IB where the data of"
    assert all(re.match(progress_line, line) for line in progress), output
