"""Several IB logins (issue 16): two embedded gateways, one per login, each pacing IB's rules
on its own; `ibw backfill` with a gateways file runs one process per data login, each series
on the login it is assigned to. Both gateways refuse nothing, every series lands once, and the
whole takes about half of what one login takes for the same series."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from ibsim.clock import ShiftedClock
from ibsim.config import PacingRules
from tests.kit.gateway import NOW
from tests.kit.processes import backfill_command, environment
from tests.kit.universe import write_universe

pytestmark = pytest.mark.slow  # real `ibw` processes and pacing windows: about a minute

SCALE = 0.05  # IB's 10-minute window in 30 s: one login needs two windows, two logins one each
SERIES = ["con_id", "bar_size", "what_to_show", "use_rth", "ts"]
HISTORICAL_DATA = 20  # reqHistoricalData's message id
PINNED = {"alpha": ["AAPL", "MSFT"], "beta": ["SPY", "QQQ"]}


def gateways_file(folder: Path, ports: dict[str, int]) -> Path:
    path = folder / "gateways.yml"
    logins = [
        {"name": name, "host": "127.0.0.1", "port": port, "role": "data", "symbols": PINNED[name]}
        for name, port in ports.items()
    ]
    path.write_text(yaml.safe_dump({"gateways": logins}))
    return path


def timed_backfill(home: Path, universe: Path, env: dict) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        backfill_command(home, universe, *PINNED["alpha"], *PINNED["beta"]),
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic() - started, done.stdout


def test_two_logins_each_pace_their_own_series_in_half_the_time(make_gateway, seeded, tmp_path):
    rules = PacingRules().scaled(SCALE)
    gateways = {  # `solo` is the one login of the first side, with windows of its own
        name: make_gateway(clock=ShiftedClock(NOW), pacing=rules)
        for name in ("solo", "alpha", "beta")
    }
    universe = write_universe(
        tmp_path, bars=[{"bar_size": "5 secs", "history": "3d"}], entries=[{"symbol": "AAPL"}]
    )
    env = environment(gateways["solo"].port, IBW_PACING_SCALE=str(SCALE))
    homes = {side: tmp_path / side for side in ("one", "two")}
    for home in homes.values():
        shutil.copytree(seeded, home)

    alone, _ = timed_backfill(homes["one"], universe, env)  # no gateways file: one login
    asked_alone = gateways["solo"].gateway.requests_received[HISTORICAL_DATA]

    ports = {name: gateways[name].port for name in PINNED}
    two = gateways_file(tmp_path, ports)
    together, output = timed_backfill(homes["two"], universe, {**env, "IBW_GATEWAYS": str(two)})
    asked = {name: gateways[name].gateway.requests_received[HISTORICAL_DATA] for name in PINNED}

    assert all(gw.gateway.pacer.refused == 0 for gw in gateways.values())
    assert "Backfilling on 2 IB logins at once: alpha, beta." in output
    for name in ("alpha", "beta"):
        assert f"[{name}] Backfilled 2 series" in output and "2 IB logins done." in output
        assert asked[name] > 0
    assert sum(asked.values()) == asked_alone  # nothing asked twice, nothing left out
    bars = {
        side: pl.read_parquet(home / "lake" / "bars" / "**" / "*.parquet", hive_partitioning=False)
        for side, home in homes.items()
    }
    assert bars["two"].select(SERIES).is_duplicated().sum() == 0
    assert bars["two"].height == bars["one"].height > 0
    assert together < 0.75 * alone, (together, alone, asked_alone)  # the windows set the pace
