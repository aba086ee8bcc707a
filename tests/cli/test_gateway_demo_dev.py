"""The command line: `ibw gateway` (and `python -m ibsim`), `ibw demo` and `ibw dev`."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from ib_async import IB

from cli.process_group import runs_in_group
from tests.kit.processes import IBW, ROOT, OutputWatcher, free_port, wait_for_http
from tests.ui.dagster_api import DagsterAPI

pytestmark = pytest.mark.slow  # real `ibw` processes, seconds to minutes each
SMALL_UNIVERSE = ROOT / "tests" / "ui" / "universe.yml"  # the UI test's: a few runs' backfill


@pytest.mark.parametrize(
    ("command", "stop"),
    [
        ([*IBW, "gateway"], signal.SIGINT),
        ([sys.executable, "-m", "ibsim"], signal.SIGTERM),
    ],
)
def test_gateway_runs_in_the_foreground_and_stops_cleanly(command, stop):
    port = free_port()
    with subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        output = OutputWatcher(proc)
        try:
            output.wait_for(f"listening on 127.0.0.1:{port}")
            ib = IB()
            ib.connect("127.0.0.1", port, clientId=5, timeout=10)
            assert ib.reqCurrentTime()
            ib.disconnect()
            output.wait_for("client 5 disconnected")
            proc.send_signal(stop)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()  # by its pid, never by name
                proc.wait(timeout=10)
        log = output.finish()
    assert "client 5 connected" in log
    assert "client 5 disconnected" in log
    assert "embedded IB Gateway stopped" in log


def test_gateway_reports_a_busy_port_in_one_sentence():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*IBW, "gateway", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_builds_a_warehouse_from_its_own_gateway(tmp_path):
    home = tmp_path / "ibw"
    result = subprocess.run(
        [*IBW, "demo", "--home", str(home)], cwd=ROOT, capture_output=True, text=True,
        timeout=300, env={**os.environ, "COLUMNS": "160"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    landed = re.search(
        r"(\d+) contracts, (\d+) option contracts and ([\d,]+) bars landed in", result.stdout
    )
    assert landed and int(landed.group(1)) > 20 and int(landed.group(2)) > 0
    assert int(landed.group(3).replace(",", "")) > 1_000
    assert "security_master_current" in result.stdout and "option_chains" in result.stdout
    assert "FROM bars JOIN" in result.stdout
    assert re.search(r"option_quotes: \d+ options with their implied vols and greeks; every check "
                     r"passed", " ".join(result.stdout.split()))  # fmt: skip
    assert "FROM option_quotes" in result.stdout
    for kind in ("CRYPTO", "FUND", "BOND", "AGGTRADES"):  # one of each new kind has bars
        assert f" {kind} " in result.stdout, kind
    assert "account snapshot of" in result.stdout and "DU9990001" in result.stdout
    assert "of `ibw live`" in result.stdout and "FROM live_bars" in result.stdout
    assert re.search(r"demo-[0-9a-f]{8} +. DU9990001 . BOT +. 10\.0", result.stdout)
    said = " ".join(result.stdout.split())  # rich wraps long lines at COLUMNS
    assert "the seeded demo accounts' own orders, placed before the demo started, not errors" in (
        said
    )
    assert "reconciliation difference" not in result.stdout + result.stderr
    assert (home / "warehouse.duckdb").exists()
    assert "Traceback" not in result.stdout + result.stderr


def test_dev_serves_dagster_quietly_and_stops_everything_on_ctrl_c(tmp_path):
    ui_port, gateway_port = free_port(), free_port()
    command = [*IBW, "dev", "--home", str(tmp_path / "ibw"), "--port", str(ui_port)]
    command += ["--gateway-port", str(gateway_port)]
    env = {**os.environ, "IBW_UNIVERSE": str(SMALL_UNIVERSE)}
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        output = OutputWatcher(proc)
        try:
            url = f"http://127.0.0.1:{ui_port}"
            info = wait_for_http(f"{url}/server_info", timeout=180)
            assert "dagster_webserver_version" in info
            ib = IB()
            ib.connect("127.0.0.1", gateway_port, clientId=9, timeout=10)
            assert ib.reqCurrentTime()
            ib.disconnect()
            # the sensor's first run (the security master) has gone through Dagster's console
            DagsterAPI(url).wait_for_runs("a run to succeed", 180, ["SUCCESS"])
            group = os.getpgid(_dagster_pid(proc.pid))
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=90) == 0  # a bound on a hang, not a speed
        finally:
            if proc.poll() is None:
                proc.kill()  # by its pid
                proc.wait(timeout=30)
        log = output.finish()
    assert "Stopped the Dagster webserver, its daemon and the embedded gateway." in log
    noisy = [x for x in log.splitlines() if re.search(r"warning|deprecat| - DEBUG - ", x, re.I)]
    assert not noisy, noisy  # no start-up warning, no DEBUG event of any run
    for port in (ui_port, gateway_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    assert not runs_in_group(group)  # no webserver, daemon, code server or run worker is left


def _dagster_pid(ibw: int) -> int:
    """The `dagster dev` child of the `ibw dev` process `ibw` (its process group's leader)."""
    children = Path(f"/proc/{ibw}/task/{ibw}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _consecutive_free_ports(count: int) -> int:
    """A port from which `count` consecutive ports are free right now."""
    for _ in range(50):
        first = free_port()
        sockets = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError(f"no {count} consecutive free ports")


def test_gateway_serves_several_logins_each_pacing_on_its_own():
    port = _consecutive_free_ports(2)
    command = [*IBW, "gateway", "--port", str(port), "--logins", "2"]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        output = OutputWatcher(proc)
        try:
            for login in (port, port + 1):
                output.wait_for(f"listening on 127.0.0.1:{login}")
                ib = IB()
                ib.connect("127.0.0.1", login, clientId=5, timeout=10)
                assert ib.reqCurrentTime() and ib.managedAccounts()
                ib.disconnect()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()  # by its pid, never by name
                proc.wait(timeout=10)
        assert "Traceback" not in output.finish()


def test_several_logins_need_a_fixed_port():
    result = subprocess.run(
        [*IBW, "gateway", "--port", "0", "--logins", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "--logins needs a fixed --port: the logins listen on consecutive ports."
    )
