"""Issue 5's acceptance, end to end through `ibw backfill` processes and the embedded gateway:
kill -9 at random moments then resume equals a clean run; two processes and a third client on one
login, with IB's pacing compressed in time, never see a pacing violation."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from ib_async import IB, Contract

from ibkr.pacer import PacingBudget, RequestKey
from ibkr.pacing_log import SharedPacer
from tests.kit.gateway import PACING_SCALE
from tests.kit.processes import backfill_command, environment
from tests.kit.universe import write_universe
from warehouse.parquet import read_dataset

pytestmark = pytest.mark.slow  # real `ibw` processes, seconds to minutes each

LINEAGE = ["request_id", "fetched_at", "source", "year"]
SERIES = ["con_id", "bar_size", "what_to_show", "use_rth"]
HISTORICAL_DATA = 20  # reqHistoricalData's message id


def lake(home: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bars without lineage and the ledger's statuses, both in a stable order."""
    bars = read_dataset(home, "bars").drop(LINEAGE).sort([*SERIES, "ts"])
    ledger = read_dataset(home, "coverage").select([*SERIES, "session_date", "status"])
    return bars, ledger.sort([*SERIES, "session_date"])


def requests_sent(summary: str) -> int:
    match = re.search(r"with (\d+) requests", summary)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_at_random_moments_then_resume_equals_a_clean_run(
    gateway, seeded_home, tmp_path, pytestconfig, request, backend
):
    """Killed at random moments while holding its series' locks and pacing reservations (in
    the home's files, or in PostgreSQL), a backfill resumed ends equal to a clean run."""
    universe = write_universe(
        tmp_path,
        bars=[{"bar_size": "1 min", "history": "1y"}, {"bar_size": "1 day", "history": "5y"}],
        entries=[{"symbol": "AAPL"}],
    )
    clean, victim = seeded_home, tmp_path / "victim"
    subprocess.run(["cp", "-a", str(seeded_home), str(victim)], check=True)
    symbols = ("AAPL", "MSFT", "SPY")
    env = environment(gateway.port)
    if backend == "postgres":
        env["IBW_POSTGRES_URL"] = request.getfixturevalue("postgres_url")
    done = subprocess.run(backfill_command(clean, universe, *symbols), env=env,
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 sessions still missing" in done.stdout

    rng = random.Random(5)
    kills = 0
    for _ in range(30 if pytestconfig.getoption("--full-size") else 10):
        # The moment is progress, not time: at start (imports), or after the k-th bars request.
        after = gateway.gateway.requests_received[HISTORICAL_DATA] + rng.randint(0, 30)
        command = backfill_command(victim, universe, *symbols)
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 240
        while gateway.gateway.requests_received[HISTORICAL_DATA] < after:
            if process.poll() is not None:
                break
            assert time.monotonic() < deadline, "the backfill never reached its request"
            time.sleep(0.005)
        if process.poll() is None:
            process.kill()  # SIGKILL, by process id
            kills += 1
        process.wait(timeout=30)
    assert kills >= 5  # most runs were cut short somewhere (imports, requests, writes)
    assert not read_dataset(victim, "coverage").is_empty()  # the killed runs kept their progress
    resumed = subprocess.run(backfill_command(victim, universe, *symbols), env=env,
                             capture_output=True, text=True, timeout=240)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert requests_sent(resumed.stdout) < requests_sent(done.stdout)  # it resumed

    clean_bars, clean_ledger = lake(clean)
    bars, ledger = lake(victim)
    assert bars.equals(clean_bars)
    assert bars.select([*SERIES, "ts"]).is_duplicated().sum() == 0
    assert ledger.equals(clean_ledger)
    complete = ledger.filter(pl.col("status") == "complete").select([*SERIES, "session_date"])
    with_bars = bars.select([*SERIES, "session_date"]).unique()
    assert complete.sort(pl.all()).equals(with_bars.sort(pl.all()))  # the ledger agrees


def test_two_processes_and_a_third_client_never_break_pacing(
    compressed_gateway, seeded_home, tmp_path
):
    gw = compressed_gateway
    universe = write_universe(
        tmp_path, bars=[{"bar_size": "5 secs", "history": "16d"}], entries=[{"symbol": "AAPL"}]
    )
    env = environment(gw.port, IBW_PACING_SCALE=str(PACING_SCALE))
    processes = [
        subprocess.Popen(backfill_command(seeded_home, universe, *symbols), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for symbols in (("AAPL", "MSFT"), ("SPY", "QQQ"))
    ]  # fmt: skip
    try:
        third = third_client(gw.port, seeded_home, requests=30)
        outputs = [p.communicate(timeout=240)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in processes] == [0, 0], outputs
    pacer = gw.gateway.pacer
    assert pacer.refused == 0 and third == 30
    assert pacer.admitted >= 300
    assert all("0 sessions still missing" in out and "(IB 162)" not in out for out in outputs)


def third_client(port: int, home: Path, requests: int) -> int:
    """Another tool on the same login (the live job refilling a gap): its own 5-s requests,
    each through the shared pacer. Returns how many it got answered."""
    budget = PacingBudget().scaled(PACING_SCALE)
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=77, timeout=10)
    contract = Contract(conId=76792991, exchange="SMART")  # TSLA
    answered = 0
    try:
        with SharedPacer.for_login(home, "127.0.0.1", port, "DU123456", budget=budget) as pacer:
            for n in range(requests):
                end = f"20240709-{14 + n // 4:02d}:{(n % 4) * 15:02d}:00"
                key = RequestKey(contract.conId, "SMART", "TRADES", "5 secs", end, "900 S", True)
                with pacer.slot(key):
                    bars = ib.reqHistoricalData(
                        contract, end, "900 S", "5 secs", "TRADES", True, 2, timeout=30
                    )
                answered += bool(bars)
                time.sleep(0.01)
    finally:
        ib.disconnect()
    return answered


@pytest.mark.slow
def test_two_machines_share_one_login_through_postgres_and_a_shared_lake(
    compressed_gateway, seeded_home, tmp_path, postgres_url
):
    """Two process trees with private homes, sharing only PostgreSQL (pacing log, series locks)
    and the lake, both asked for the same series on one login: IB refuses nothing, every series
    lands once, no bar twice."""
    gw = compressed_gateway
    shared = tmp_path / "shared"
    shutil.copytree(seeded_home / "lake", shared / "lake")  # the security master is there
    universe = write_universe(
        tmp_path, bars=[{"bar_size": "5 secs", "history": "8d"}], entries=[{"symbol": "AAPL"}]
    )
    env = environment(
        gw.port, IBW_PACING_SCALE=str(PACING_SCALE), IBW_LAKE=str(shared),
        IBW_POSTGRES_URL=postgres_url,
    )  # fmt: skip
    machines = [tmp_path / "machine-a", tmp_path / "machine-b"]
    symbols = ("AAPL", "MSFT", "SPY", "QQQ")
    processes = [
        subprocess.Popen(backfill_command(home, universe, *symbols), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for home in machines
    ]  # fmt: skip
    try:
        outputs = [p.communicate(timeout=300)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert gw.gateway.pacer.refused == 0 and gw.gateway.pacer.admitted > 0
    again = subprocess.run(backfill_command(machines[0], universe, *symbols), env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "Nothing to fetch for 4 series: every expected session is held." in again.stdout, (
        again.stdout + again.stderr
    )
    bars = pl.read_parquet(shared / "lake" / "bars" / "**" / "*.parquet", hive_partitioning=False)
    assert bars.height > 0 and bars.select([*SERIES, "ts"]).is_duplicated().sum() == 0
    for home in machines:  # nothing of the shared state stayed on a machine
        assert not (home / "pacing").exists() and not (home / "locks").exists()
        assert not (home / "lake").exists()


@pytest.mark.slow
def test_postgres_restarted_in_the_middle_of_a_backfill(
    compressed_gateway, seeded_home, tmp_path, postgres, postgres_url
):
    """PostgreSQL restarts after the 10th bars request: the run finishes, or fails with one
    sentence; a rerun completes what is left; IB refused nothing throughout."""
    gw = compressed_gateway
    universe = write_universe(
        tmp_path, bars=[{"bar_size": "5 secs", "history": "4d"}], entries=[{"symbol": "AAPL"}]
    )
    env = environment(gw.port, IBW_PACING_SCALE=str(PACING_SCALE), IBW_POSTGRES_URL=postgres_url)
    command = backfill_command(seeded_home, universe, "AAPL", "MSFT")
    asked = gw.gateway.requests_received[HISTORICAL_DATA]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 240
        while gw.gateway.requests_received[HISTORICAL_DATA] < asked + 10:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the backfill never reached its 10th request"
            time.sleep(0.005)
        postgres.restart()
        output = process.communicate(timeout=240)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert "Traceback" not in output, output
    if process.returncode != 0:
        [last] = output.strip().splitlines()[-1:]
        assert "The shared state in PostgreSQL at postgresql://postgres@127.0.0.1:" in last, output
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "0 sessions still missing" in rerun.stdout or "every expected session is held" in (
        rerun.stdout
    )
    assert gw.gateway.pacer.refused == 0
