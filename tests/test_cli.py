"""The command line: `ibw gateway` and `python -m ibsim` in the foreground, and `ibw demo`."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ib_async import IB

ROOT = Path(__file__).resolve().parents[1]
IBW = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OutputWatcher:
    """Collects a process's output on a thread, so waiting for a line can have a deadline."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, needle: str, timeout: float = 60.0) -> None:
        with self._changed:
            found = self._changed.wait_for(lambda: any(needle in x for x in self.lines), timeout)
        assert found, f"no line with {needle!r} in {self.lines}"

    def finish(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


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


def test_demo_fetches_aapl_bars_from_its_own_gateway():
    result = subprocess.run(
        [*IBW, "demo"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    fetched = re.search(r"Fetched (\d+) bars of AAPL \(conId 265598\)", result.stdout)
    assert fetched and int(fetched.group(1)) > 0  # the count depends on today's sessions
