"""`ibw serve`: bad input in one sentence, and end to end on a real PostgreSQL: the webserver
and the daemon as production processes against the test's embedded gateway; the daemon ticks the
`bars_backfill` sensor and launches a process per run, bars land, the schedules and the live
observer run on that instance; SIGTERM stops every process of the group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import psycopg2
import pytest

from cli.main import main
from cli.process_group import runs_in_group
from shared_state.settings import POSTGRES_URL
from tests.kit.processes import IBW, ROOT, OutputWatcher, free_port, wait_for_http
from tests.kit.waiting import poll_until
from tests.ui.dagster_api import DagsterAPI

SMALL_UNIVERSE = ROOT / "tests" / "ui" / "universe.yml"
STARTUP = 240.0  # seconds the webserver may take to answer on a loaded machine
BACKFILL = 480.0  # seconds for the sensor's first bars runs: bounds a hang, not a speed
SECRET = "not-logged"  # trust authentication ignores it; no output line may hold it
BAD_SECRET = "s3cr@t/pw"
LISTEN = "0A"  # a TCP socket's state in /proc/net/tcp
INSTIGATORS = """
query Instigators {
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        schedules { name scheduleState { status } }
        sensors { name sensorState { status ticks(limit: 1) { status } } }
      }
    }
  }
}"""


@pytest.mark.slow  # real Dagster processes: about a minute here
@pytest.mark.timeout(900)  # above the sum of its own bounds
def test_serve_runs_the_daemon_on_postgres_and_stops_its_group_on_sigterm(
    tmp_path, gateway, postgres_url
):
    port = free_port()
    url = postgres_url.replace("postgres@", f"postgres:{SECRET}@")
    env = {
        **os.environ,
        POSTGRES_URL: url,
        "IB_HOST": "127.0.0.1",
        "IB_PORT": str(gateway.port),
        "IBW_UNIVERSE": str(SMALL_UNIVERSE),
        "IBW_SNAPSHOT_REGION": "none",
    }
    command = [*IBW, "serve", "--home", str(tmp_path / "ibw"), "--port", str(port)]
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        output = OutputWatcher(proc)
        try:
            api = DagsterAPI(f"http://127.0.0.1:{port}")
            wait_for_http(f"{api.url}/server_info", timeout=STARTUP)
            assert _listeners(port) == ["127.0.0.1"]  # the default bind: loopback only
            output.wait_for(f"The Dagster webserver answers on http://127.0.0.1:{port}.")

            def backfill_run_succeeded() -> bool:
                assert proc.poll() is None, "ibw serve ended"
                return bool(api.runs(["SUCCESS"], **{"ibw/backfill": "bars"}))

            poll_until(backfill_run_succeeded, "a run of the sensor's backfill", BACKFILL, every=2)
            assert api.partitions("bars")["stats"]["numMaterialized"] > 0
            runs = api.runs()
            assert _stored_runs(postgres_url) >= len(runs)  # the runs are PostgreSQL's rows
            schedules, sensors = _instigators(api)
            assert schedules and set(schedules.values()) == {"RUNNING"}, schedules
            for sensor in ("bars_backfill", "live_observer"):  # ticked by the daemon
                assert sensors[sensor] == ("RUNNING", True), sensors
            group = os.getpgid(_children(proc.pid)[0])
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=90) == 0  # a bound on a hang, not a speed
        finally:
            if proc.poll() is None:  # a failed assertion: `ibw serve` still stops its group
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    proc.kill()  # by its pid
                    proc.wait(timeout=30)
        log = output.finish()
    assert "Stopped the Dagster webserver and its daemon." in log
    assert SECRET not in log and url not in log
    assert "Traceback" not in log
    assert not runs_in_group(group)  # no webserver, daemon, code server or run worker is left
    assert not _listeners(port)
    assert not (tmp_path / "ibw" / "dagster" / "history").exists()  # no SQLite run storage


def test_serve_reports_a_bad_url_in_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(POSTGRES_URL, f"mysql://root:{BAD_SECRET}@db/dagster")
    assert main(["serve", "--home", str(tmp_path / "ibw")]) == 2
    said = capsys.readouterr().out
    assert said.startswith("ibw serve: IBW_POSTGRES_URL must be a PostgreSQL URL")
    assert BAD_SECRET not in said and "Traceback" not in said


def test_serve_reports_a_busy_port_in_one_sentence(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--home", str(tmp_path / "ibw"), "--port", str(port)]) == 2
    said = capsys.readouterr().out
    assert said.startswith(f"ibw serve: Cannot listen on 127.0.0.1:{port} (")
    assert said.strip().endswith("pick another --port or --host, or stop what uses it.")


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _listeners(port: int) -> list[str]:
    """The IPv4 addresses listening on `port` (from /proc/net/tcp: little-endian hex)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == LISTEN:
            found.append(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


def _instigators(api: DagsterAPI) -> tuple[dict[str, str], dict[str, tuple[str, bool]]]:
    """{schedule: status}, {sensor: (status, whether it has ticked)} on the instance."""
    (repository,) = api.query(INSTIGATORS)["repositoriesOrError"]["nodes"]
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
    sensors = {
        s["name"]: (s["sensorState"]["status"], bool(s["sensorState"]["ticks"]))
        for s in repository["sensors"]
    }
    return schedules, sensors


def _stored_runs(url: str) -> int:
    con = psycopg2.connect(url)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT count(*) FROM runs")
            return cur.fetchone()[0]
    finally:
        con.close()
