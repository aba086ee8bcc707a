"""The daemon against the command line: one backfill of about 300 daily-bar series through
`ibw serve` on PostgreSQL (the `bars_backfill` sensor ticked by the daemon, ranged runs of
`bars_job` launched as processes) ÷ `ibw backfill` of the same series, in one run.

Both sides start from the same warehouse: the default universe's security master (84
contracts, resolved by the `contracts` asset against an embedded gateway), four daily series
per contract (TRADES, MIDPOINT, BID and ASK over 30 days, where IB serves them) and each
series' head timestamp, no bar held; each side gets its own copy. The gateway paces nothing
and IBW_PACING_SCALE compresses the client's pacer, so both sides send the same requests
without waiting on IB's windows: the figure is what Dagster's machinery costs. (Heads are
seeded because the sensor admits a tick's worth of head requests, one small-bar request each,
per tick: with compressed windows its 30 s interval, not the machinery, would set the pace.)

    ibw backfill   launch to exit of the command
    ibw serve      to the moment every `bars` partition is materialized and no run is left
                   unfinished (read through the webserver's GraphQL API as the UI reads it),
                   from the launch (webserver, daemon and code location start-up included, paid
                   once in a server's life) and from the sensor's first run request (what each
                   backfill of a running server costs)
Ratio = serve ÷ backfill, both ways; the goal is at most 1.5.

    uv run python bench/serve_backfill.py        # about 2 minutes; needs Debian's postgresql
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from assets.resources import UniverseResource
from assets.universe.contracts import contracts
from engines.backfill import connected
from engines.bar_series import Target, targets
from ibkr.connection import ConnectionSettings
from ibsim.server import GatewayThread
from shared_state.settings import POSTGRES_URL
from tests.kit.gateway import gateway_config
from tests.kit.postgres import start_server
from tests.kit.processes import IBW, ROOT, free_port, wait_for_http
from tests.kit.universe import dagster_resources, write_universe
from tests.kit.waiting import poll_until
from tests.ui.dagster_api import UNFINISHED, DagsterAPI

BARS = [
    {"bar_size": "1 day", "history": "30d", "what_to_show": what}
    for what in ("TRADES", "MIDPOINT", "BID", "ASK")
]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
CREATED = "{ runsOrError { ... on Runs { results { creationTime } } } }"
BOUND = 1800.0  # seconds: bounds a hang of either side, not a speed


def command_line(env: dict, home: Path) -> float:
    """Seconds `ibw backfill` takes for the whole universe."""
    started = time.perf_counter()
    subprocess.run(
        [*IBW, "backfill", "--home", str(home)],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, timeout=BOUND,
    )  # fmt: skip
    return time.perf_counter() - started


@dataclass
class Daemon:
    """The daemon side's figures, in seconds from launching `ibw serve` or from the sensor's
    first run request, until every bars partition is materialized."""

    from_launch: float
    webserver_answered: float
    from_first_request: float
    runs: int


def daemon(env: dict, home: Path, postgres_url: str) -> Daemon:
    """`ibw serve` on PostgreSQL until the sensor's runs have materialized every partition."""
    port = free_port()
    command = [*IBW, "serve", "--home", str(home), "--port", str(port)]
    launched = time.time()  # wall clock: Dagster stamps runs with it
    with subprocess.Popen(
        command, cwd=ROOT, env={**env, POSTGRES_URL: postgres_url},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ) as proc:  # fmt: skip
        try:
            api = DagsterAPI(f"http://127.0.0.1:{port}")
            wait_for_http(f"{api.url}/server_info", timeout=BOUND)
            answered = time.time() - launched

            def all_materialized() -> bool:
                assert proc.poll() is None, "ibw serve ended"
                stats = api.partitions("bars")["stats"]
                assert not stats["numFailed"], f"{stats['numFailed']} bars partitions failed"
                return (
                    stats["numPartitions"] > 0
                    and stats["numMaterialized"] == stats["numPartitions"]
                    and not api.runs(UNFINISHED)
                )

            poll_until(all_materialized, "every bars partition", BOUND, every=1)
            done = time.time()
            created = [run["creationTime"] for run in api.query(CREATED)["runsOrError"]["results"]]
            return Daemon(done - launched, answered, done - min(created), len(created))
        finally:
            proc.send_signal(signal.SIGTERM)  # `ibw serve` stops its process group
            proc.wait(timeout=120)


def seed_heads(port: int, home: Path, found: list[Target]) -> None:
    """Each series' head timestamp asked once and kept in `home`, for both sides."""
    settings = ConnectionSettings("127.0.0.1", port, 360, timeout=30)
    with connected(settings, home, "bench-heads") as backfill:
        now = backfill.now()
        for target in found:
            backfill.head(target, now)


def main() -> None:
    logging.disable(logging.WARNING)
    os.environ["IBW_PACING_SCALE"] = "0.001"  # the client's pacer: no waits worth measuring
    server = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp, GatewayThread(gateway_config()) as gw:
            root = Path(tmp)
            seed, universe = root / "seed", write_universe(root, bars=BARS)
            resources = dagster_resources(gw, seed, universe, client_id=350)
            assert dg.materialize([contracts], resources=resources, run_config=QUIET).success
            found = targets(seed, UniverseResource(path=str(universe)).load().bars)
            env = {
                **os.environ,
                "IB_HOST": "127.0.0.1",
                "IB_PORT": str(gw.port),
                "IBW_UNIVERSE": str(universe),
                "IBW_SNAPSHOT_REGION": "none",  # no nightly snapshot in the daemon's way
            }
            env.pop(POSTGRES_URL, None)
            seed_heads(gw.port, seed, found)
            homes = {side: root / side for side in ("cli", "serve")}
            for home in homes.values():
                shutil.copytree(seed, home)
            cli = command_line(env, homes["cli"])
            print(f"ibw backfill  {len(found)} series  {cli:6.1f} s", flush=True)
            serve = daemon(env, homes["serve"], server.create_database("serve_backfill"))
            print(
                f"ibw serve     {len(found)} series  {serve.from_launch:6.1f} s from launch "
                f"(webserver up after {serve.webserver_answered:.1f} s), "
                f"{serve.from_first_request:.1f} s from the sensor's first run request; "
                f"{serve.runs} runs"
            )
            print(
                f"serve ÷ backfill: {serve.from_launch / cli:.2f} from launch, "
                f"{serve.from_first_request / cli:.2f} from the first request (goal ≤ 1.5)"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
