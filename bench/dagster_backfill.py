"""Dagster backfill: what a user pays in Dagster per bar series for a ~200-series backfill through
the sensor, one contract a run (before batching) against ten contracts a run (after), in one run.

Both sides start from the same warehouse: the default universe's security master (84 contracts,
resolved by the `contracts` asset against an embedded gateway), three bar series (1 day over
30 d and 1 hour over 10 d for every contract, 1 min over 5 d for stocks, futures and FX pairs),
nothing held. Each side gets its own copy and its own DagsterInstance on disk (a temp
DAGSTER_HOME, SQLite storage, as `ibw dev` has), then loops: one tick of `bars_backfill`
(partitions added and events reported as the daemon does), every requested run of `bars_job`
executed in process with the tags the sensor gave it, until a tick requests nothing. The
gateway paces nothing and IBW_PACING_SCALE compresses the client's pacer, so no time is spent
waiting on IB's pacing.

    wall        sensor ticks + runs, in seconds
    work        time inside `Backfill.run` (IB's answers, validation, Parquet, the ledger)
    Dagster     wall - work: run start-up and teardown, the event log, per-run IB connection,
                checks and catalog refreshes, sensor ticks; what batching can save
Ratio = Dagster seconds per series before ÷ after. Runs here start in process; Dagster's
default run launcher starts a process per run that imports the code location first. That start
is measured apart (best of 3 `python -c "import pipelines.definitions"`, a lower bound of a run
worker's start) and added per run for a second pair of figures.

    uv run python bench/dagster_backfill.py [--per-run 10]      # about 3 minutes
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

import engines.backfill
from assets import bars
from assets.resources import UniverseResource
from assets.universe.contracts import contracts
from engines.bar_series import targets
from ibsim.server import GatewayThread
from tests.kit.gateway import gateway_config
from tests.kit.sensors import evaluate
from tests.kit.universe import dagster_resources, write_universe

BARS = [
    {"bar_size": "1 day", "history": "30d"},
    {"bar_size": "1 hour", "history": "10d"},
    {"bar_size": "1 min", "history": "5d", "sec_types": ["STK", "FUT", "CASH"]},
]
MAX_TICKS = 50  # a backfill that never ends is a bug; stop and say so
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class Side:
    """One side's figures."""

    per_run: int
    series: int = 0
    runs: int = 0
    ticks: int = 0
    wall: float = 0.0
    work: float = 0.0

    def per_series(self, worker_start: float = 0.0) -> float:
        """Dagster seconds per series, with `worker_start` seconds added per run."""
        return (self.wall - self.work + worker_start * self.runs) / self.series

    def line(self) -> str:
        return (
            f"{self.per_run:>2} contracts/run  {self.runs:>3} runs  {self.ticks:>2} ticks  "
            f"{self.series} series  wall {self.wall:6.1f} s  work {self.work:6.1f} s  "
            f"Dagster {self.wall - self.work:6.1f} s = {self.per_series():.3f} s/series"
        )


def worker_start() -> float:
    """Seconds a new process takes to import the code location (best of 3)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import pipelines.definitions"], check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def backfill(gw: GatewayThread, seed: Path, universe: Path, root: Path, per_run: int) -> Side:
    """The whole backfill through the sensor with `per_run` contracts a run."""
    home = root / f"ibw-{per_run}"
    shutil.copytree(seed, home)
    defs = dg.Definitions.merge(
        bars.definitions(per_run),
        dg.Definitions(
            assets=[contracts],
            resources=dagster_resources(gw, home, universe, client_id=380),
            executor=dg.in_process_executor,
        ),
    )
    job = defs.resolve_job_def("bars_job")
    side = Side(
        per_run, series=len(targets(home, UniverseResource(path=str(universe)).load().bars))
    )
    dagster_home = root / f"dagster-{per_run}"
    dagster_home.mkdir()
    with dg.DagsterInstance.local_temp(str(dagster_home)) as instance:
        cursor, started = None, time.perf_counter()
        for side.ticks in range(1, MAX_TICKS + 1):
            result = evaluate(defs, "bars_backfill", instance, cursor)
            if not getattr(result, "run_requests", None):
                break
            cursor = result.cursor
            for request in result.run_requests:
                run = job.execute_in_process(
                    instance=instance, tags=request.tags, run_config=QUIET, raise_on_error=False
                )
                assert run.success, f"run {run.run_id} failed"
                side.runs += 1
        else:
            raise RuntimeError(f"the sensor still requests runs after {MAX_TICKS} ticks")
        side.wall = time.perf_counter() - started
    return side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--per-run", type=int, default=bars.CONTRACTS_PER_RUN)
    args = parser.parse_args()
    os.environ["IBW_PACING_SCALE"] = "0.001"  # the client's pacer: no waits worth measuring
    logging.disable(logging.WARNING)  # the sensor's and runs' info lines
    real_run, worked = engines.backfill.Backfill.run, [0.0]

    def timed_run(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return real_run(self, *args, **kwargs)
        finally:
            worked[0] += time.perf_counter() - started

    engines.backfill.Backfill.run = timed_run  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp, GatewayThread(gateway_config()) as gw:
        root = Path(tmp)
        seed, universe = root / "seed", write_universe(root, bars=BARS)
        resources = dagster_resources(gw, seed, universe, client_id=350)
        assert dg.materialize([contracts], resources=resources, run_config=QUIET).success
        sides = []
        for per_run in (1, args.per_run):
            worked[0] = 0.0
            side = backfill(gw, seed, universe, root, per_run)
            side.work = worked[0]
            sides.append(side)
            print(side.line(), flush=True)
    before, after = sides
    print(
        f"in process: Dagster {before.per_series():.3f} ÷ {after.per_series():.3f} s/series, "
        f"ratio {before.per_series() / after.per_series():.1f}"
    )
    start = worker_start()
    with_start = [side.per_series(start) for side in sides]
    print(
        f"with a run worker's start of {start:.1f} s per run: Dagster {with_start[0]:.3f} ÷ "
        f"{with_start[1]:.3f} s/series, ratio {with_start[0] / with_start[1]:.1f}"
    )


if __name__ == "__main__":
    main()
