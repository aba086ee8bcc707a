"""One live service per home: a second `ibw live` refuses at once naming the holder's pid, the
lock dies with its holder (kill -9 too), and a client id held elsewhere (326) is said each retry."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.kit.live import LIVE_CLIENT_ID, wait_until_serving
from tests.kit.processes import live_command

pytestmark = pytest.mark.slow  # real `ibw` processes, seconds to minutes each

WAIT = 60.0  # real seconds any one condition may take


@pytest.fixture
def live(make_gateway, tmp_path: Path):
    """Start `ibw live` processes on the embedded gateway; every one still running is stopped."""
    gw = make_gateway()
    config = tmp_path / "live.yml"
    config.write_text("streams:\n  - {symbol: AAPL, ticks: true}\nflush_every: 0.5\n")
    started: list[subprocess.Popen] = []

    def start(
        home: Path, log: Path, client_id: int = LIVE_CLIENT_ID, **extra: str
    ) -> subprocess.Popen:
        env = {**os.environ, "IB_PORT": str(gw.port), "IBW_LIVE_CLIENT_ID": str(client_id)}
        env.update(extra)
        with log.open("ab") as out:
            command = live_command(home, config)
            started.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=WAIT)


def test_one_service_per_home_and_a_held_client_id_is_said(
    live, seeded_home: Path, tmp_path: Path
) -> None:
    first = live(seeded_home, tmp_path / "first.log")
    wait_until_serving(seeded_home, first)

    # Another service on the same home, even with another client id, refuses at once.
    second_log = tmp_path / "second.log"
    second = live(seeded_home, second_log, client_id=LIVE_CLIENT_ID + 1)
    assert second.wait(timeout=WAIT) == 1
    said = " ".join(second_log.read_text().split())
    assert f"Another live service (pid {first.pid}) already runs on" in said, said
    assert "connected to" not in said and "Traceback" not in said, said

    # On another home with the first one's client id, IB refuses it (326): said at each retry.
    other_home = tmp_path / "other"
    shutil.copytree(seeded_home, other_home, ignore=shutil.ignore_patterns("live"))
    clash_log = tmp_path / "clash.log"
    clash = live(other_home, clash_log)
    deadline = time.monotonic() + WAIT
    while " ".join(clash_log.read_text().split()).count("IBW_LIVE_CLIENT_ID") < 2:
        assert clash.poll() is None, clash_log.read_text()
        assert time.monotonic() < deadline, clash_log.read_text()
        time.sleep(0.1)
    said = " ".join(clash_log.read_text().split())
    assert f"another process is connected with client id {LIVE_CLIENT_ID}" in said, said
    clash.send_signal(signal.SIGTERM)
    assert clash.wait(timeout=WAIT) == 0
    assert first.poll() is None, "the first service stopped"

    first.send_signal(signal.SIGKILL)  # the kernel frees the lock, whatever the file says
    first.wait(timeout=WAIT)
    third = live(seeded_home, tmp_path / "third.log")
    wait_until_serving(seeded_home, third)
    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=WAIT) == 0


def test_with_postgres_one_service_per_login_across_homes(
    live, seeded_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    """Two homes (two machines) on one IB login through one PostgreSQL: the second service
    refuses once connected, in one sentence; the lock dies with its holder (kill -9)."""
    other_home = tmp_path / "other"
    shutil.copytree(seeded_home, other_home, ignore=shutil.ignore_patterns("live"))
    first = live(seeded_home, tmp_path / "first.log", IBW_POSTGRES_URL=postgres_url)
    wait_until_serving(seeded_home, first)
    second_log = tmp_path / "second.log"
    second = live(other_home, second_log, LIVE_CLIENT_ID + 1, IBW_POSTGRES_URL=postgres_url)
    assert second.wait(timeout=WAIT) == 1
    said = " ".join(second_log.read_text().split())
    assert "Another live service already runs on IB login DU" in said, said
    assert "Traceback" not in said and postgres_url not in said, said
    assert first.poll() is None, "the first service stopped"

    first.send_signal(signal.SIGKILL)  # the server frees the login's lock with its session
    first.wait(timeout=WAIT)
    third = live(other_home, tmp_path / "third.log", LIVE_CLIENT_ID + 1,
                 IBW_POSTGRES_URL=postgres_url)  # fmt: skip
    wait_until_serving(other_home, third)
    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=WAIT) == 0
