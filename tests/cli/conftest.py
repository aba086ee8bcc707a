"""The command line's fixtures: `ibw backfill` as a real process against a gateway that
enforces IB's pacing, compressed."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.kit.gateway import PACING_SCALE
from tests.kit.processes import backfill_command, environment
from tests.kit.universe import write_universe


@pytest.fixture
def start_backfill(
    compressed_gateway, seeded_home, tmp_path
) -> Iterator[Callable[[], subprocess.Popen]]:
    """`ibw backfill` of two stocks' 5-s bars (dozens of requests for 4 days of history) as a
    process of its own."""
    started: list[subprocess.Popen] = []

    def start(history: str = "4d") -> subprocess.Popen:
        bars = [{"bar_size": "5 secs", "history": history}]
        universe = write_universe(tmp_path, bars=bars, entries=[{"symbol": "AAPL"}])
        command = backfill_command(seeded_home, universe, "AAPL", "MSFT")
        env = environment(compressed_gateway.port, IBW_PACING_SCALE=str(PACING_SCALE))
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()  # by its pid
            process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
