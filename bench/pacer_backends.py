"""Pacer reservation latency: one pacing decision on PostgreSQL ÷ on SQLite, in one run.

A decision is what every paced request pays before it goes: `SharedPacer.slot` (reserve, confirm,
release: three transactions under the login's write lock). Both pacers get a budget so large that
no rule ever makes a request wait, so the figure is the log's own cost. SQLite: a file in a temp
dir (WAL). PostgreSQL: a fresh local server (Debian's binaries, `tests/kit/postgres.py`) reached
over TCP on 127.0.0.1, as a machine beside the database would. The log holds up to the budget's
horizon of entries, as in a busy window. Ratio = median PostgreSQL ÷ median SQLite.

    uv run python bench/pacer_backends.py [--requests 2000]      # about 30 s
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ibkr.pacer import PacingBudget, RequestKey
from ibkr.pacing_log import SharedPacer
from shared_state.database import PostgresDatabase
from tests.kit.postgres import start_server

NO_WAITS = PacingBudget(
    window_limit=1_000_000, identical_window=0.0, burst_limit=1_000_000, max_open=1_000_000
)


def latencies(pacer: SharedPacer, requests: int) -> list[float]:
    """Seconds of each `slot` (reserve, confirm, release) for distinct small-bar requests."""
    seconds = []
    for n in range(requests):
        key = RequestKey(n % 50, "SMART", "TRADES", "5 secs", str(n), "1800 S", True)
        started = time.perf_counter()
        with pacer.slot(key):
            pass
        seconds.append(time.perf_counter() - started)
    return seconds


def report(name: str, seconds: list[float]) -> float:
    median = statistics.median(seconds)
    p95 = statistics.quantiles(seconds, n=20)[-1]
    print(f"{name:<10} median {median * 1e3:7.3f} ms   p95 {p95 * 1e3:7.3f} ms")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    server = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            with SharedPacer(Path(tmp) / "pacing.sqlite", NO_WAITS) as pacer:
                sqlite = report("SQLite", latencies(pacer, args.requests))
            database = PostgresDatabase(server.url, "pacing bench")
            with SharedPacer(database, NO_WAITS, login="bench") as pacer:
                postgres = report("PostgreSQL", latencies(pacer, args.requests))
    finally:
        server.stop()
    print(f"ratio (PostgreSQL ÷ SQLite, median): {postgres / sqlite:.2f}")


if __name__ == "__main__":
    main()
