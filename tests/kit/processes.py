"""`ibw` as a real process: where the repository is, how to start the command line, the
environment it reads, a free port, and a watcher that waits (bounded) for a line of output."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
IBW = [sys.executable, "-c", "import sys; from cli.main import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(port: int, **extra: str) -> dict[str, str]:
    """The process environment of an `ibw` run against the gateway on `port`."""
    return {**os.environ, "IB_PORT": str(port), "COLUMNS": "200", **extra}


def backfill_command(home: Path, universe: Path, *symbols: str) -> list[str]:
    return [*IBW, "backfill", *symbols, "--home", str(home), "--universe", str(universe)]


def live_command(home: Path, config: Path) -> list[str]:
    return [*IBW, "live", "--home", str(home), "--config", str(config)]


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


def wait_for_http(url: str, timeout: float) -> str:
    """Poll `url` until it answers 200 (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
