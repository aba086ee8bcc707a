"""Backfill pacing: the sustained small-bar request rate one IB login reaches, as a share of IB's
60 requests per 10 minutes.

A small-bar backfill (bars of 30 s or less) is bound by IB's pacing, so its speed is how much of
the budget it uses. The pacer keeps 58 (not 60) per window plus a slack, and every request goes
through a SQLite log shared by all processes on the login. This runs the real thing with IB's
windows compressed by a scale S: an embedded gateway whose pacing rules are scaled by S
(ShiftedClock: 'now' is 2024-07-10, time passes at the wall clock's pace), a warehouse seeded
with the default universe's security master, two `ibw backfill` processes (5-s bars, 16 days,
two stocks each, IBW_PACING_SCALE=S) and a third client sending its own 30 requests through
`SharedPacer`. The gateway's own pacer records every admitted request; this samples its log
on the gateway's loop and measures, from the first to the last admitted request:
  sustained rate per window  58 × W ÷ the mean time from a request to the 58th after it
                             (W = 600 s × S; exact for bursts of 58 and for a steady stream)
  ÷ 60 (IB's limit) and ÷ 58 (the pacer's), plus the most requests in any window of length W
  (IB's rule: at most 60) and the gateway's pacing violations (must be 0). The pacer cannot
  beat 58 × W / (W + slack) per window; the slack is never scaled below 0.05 s, so that ceiling
  is 0.9663 of 60 at full scale, 0.9651 at S = 0.05 and 0.9587 at S = 0.01.
Goal: sustained rate ≥ 0.95 × 60.

The pacer keeps `--reserve` of each window for a live service's real-time bars
(IBW_PACING_RESERVE, 6 by default in production); this measures a login with no live service, so
the default here is 0. With a reserve R the backfill's share is 58 − R and the goal 0.95 × (60 − R).

With `--postgres` the shared log is PostgreSQL (a fresh local server, `tests/kit/postgres.py`)
instead of the home's SQLite file: the same login's pacing as two machines would share it.

    uv run python bench/backfill_pacing.py [--scale 0.05] [--reserve 0] [--postgres]  # ~3 min
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import dagster as dg
import yaml
from ib_async import IB, Contract

from assets.resources import IBResource, UniverseResource, WarehouseResource
from assets.universe.contracts import contracts
from ibkr.pacer import RESERVE_ENV, PacingBudget, RequestKey
from ibkr.pacing_log import SharedPacer
from ibsim.clock import ShiftedClock
from ibsim.config import PacingRules
from ibsim.market.pacing import PacedRequest
from ibsim.server import GatewayThread
from shared_state.settings import POSTGRES_URL
from tests.kit.gateway import NOW, gateway_config
from tests.kit.postgres import start_server

IB_LIMIT = 60
GOAL = 0.95
THIRD_REQUESTS = 30
TSLA = 76792991
GROUPS = (("AAPL", "MSFT"), ("SPY", "QQQ"))
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class Recorder:
    """Every request the gateway's pacer admits, read from its log on the gateway's loop (the
    log keeps a window's worth, so sampling every half second misses nothing)."""

    def __init__(self, gw: GatewayThread) -> None:
        self.gw = gw
        self.seen: set[PacedRequest] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        self.seen.update(self.gw.call(lambda: list(self.gw.gateway.pacer._log)))

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def seed(gw: GatewayThread, home: Path) -> None:
    """The default universe's security master, as the tests' `seeded` fixture makes it."""
    resources = {
        "ib": IBResource(port=gw.port, client_id=350),
        "warehouse": WarehouseResource(home=str(home)),
        "universe": UniverseResource(),
    }
    assert dg.materialize([contracts], resources=resources, run_config=QUIET).success


def third_client(port: int, home: Path, budget: PacingBudget) -> int:
    """Another tool on the login (as in the acceptance test): TSLA 5-s bars, each request
    through the shared pacer. Returns how many were answered with bars."""
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=77, timeout=10)
    contract = Contract(conId=TSLA, exchange="SMART")
    answered = 0
    try:
        with SharedPacer.for_login(home, "127.0.0.1", port, "DU123456", budget=budget) as pacer:
            for n in range(THIRD_REQUESTS):
                end = f"20240709-{14 + n // 4:02d}:{(n % 4) * 15:02d}:00"
                key = RequestKey(TSLA, "SMART", "TRADES", "5 secs", end, "900 S", True)
                with pacer.slot(key):
                    bars = ib.reqHistoricalData(
                        contract, end, "900 S", "5 secs", "TRADES", True, 2, timeout=30
                    )
                answered += bool(bars)
    finally:
        ib.disconnect()
    return answered


def sustained(times: list[float], window: float, k: int) -> float:
    """Requests per window: k × window ÷ the mean time from a request to the k-th after it."""
    gaps = [b - a for a, b in zip(times, times[k:], strict=False)]
    return k * window / (sum(gaps) / len(gaps))


def busiest(times: list[float], window: float) -> int:
    """The most requests in any span of length `window` (IB counts those after now - window)."""
    most, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - window:
            first += 1
        most = max(most, last - first + 1)
    return most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=float, default=0.05, help="IB's windows × this")
    parser.add_argument("--history", default="16d", help="5-s bars history per stock")
    parser.add_argument(
        "--reserve", type=int, default=0, help="small-bar requests per window kept for live"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="the pacing log in PostgreSQL, not SQLite"
    )
    args = parser.parse_args()
    server = start_server() if args.postgres else None
    if server:
        os.environ[POSTGRES_URL] = server.url  # the processes and the third client inherit it
    try:
        run(args)
    finally:
        if server:
            server.stop()


def run(args: argparse.Namespace) -> None:
    """The measurement, printed; the shared log is wherever the environment says."""
    scale = args.scale
    rules = PacingRules().scaled(scale)
    budget = replace(PacingBudget().scaled(scale), reserve=args.reserve)
    share, limit = budget.backfill_limit, IB_LIMIT - args.reserve

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "ibw"
        universe = root / "universe.yml"
        spec = {"bar_size": "5 secs", "history": args.history}
        universe.write_text(yaml.safe_dump({"entries": [{"symbol": "AAPL"}], "bars": [spec]}))
        with GatewayThread(gateway_config(clock=ShiftedClock(NOW), pacing=rules)) as gw:
            seed(gw, home)
            pacer = gw.gateway.pacer
            before = (pacer.admitted, pacer.refused)
            env = {**os.environ, "IB_PORT": str(gw.port), "IBW_PACING_SCALE": str(scale),
                   RESERVE_ENV: str(args.reserve)}  # fmt: skip
            command = [sys.executable, "-m", "cli", "backfill", "--home", str(home),
                       "--universe", str(universe)]  # fmt: skip
            started = time.monotonic()
            with Recorder(gw) as recorder:
                processes = [
                    subprocess.Popen([*command, *symbols], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
                    for symbols in GROUPS
                ]  # fmt: skip
                try:
                    third = third_client(gw.port, home, budget)
                    outputs = [p.communicate(timeout=900)[0] for p in processes]
                finally:
                    for p in processes:
                        if p.poll() is None:
                            p.kill()
            elapsed = time.monotonic() - started
            admitted, refused = pacer.admitted - before[0], pacer.refused - before[1]

    for p, out in zip(processes, outputs, strict=True):
        assert p.returncode == 0 and "0 sessions still missing" in out, out
    assert len(recorder.seen) == admitted, f"sampled {len(recorder.seen)} of {admitted}"
    times = sorted(r.at for r in recorder.seen)
    per_contract = Counter(r.key[0] for r in recorder.seen)
    window = rules.window
    rate = sustained(times, window, share)
    span = times[-1] - times[0]
    print(
        f"scale {scale}: IB window {window:g} s, pacer {budget.window_limit} per window "
        f"({share} without the reserve of {budget.reserve}) + slack {budget.slack:g} s; "
        f"log in {'PostgreSQL' if os.environ.get(POSTGRES_URL) else 'SQLite'}; run {elapsed:.0f} s"
    )
    by_contract = ", ".join(f"{con_id}: {n}" for con_id, n in sorted(per_contract.items()))
    print(f"admitted {admitted} small-bar requests by conId ({by_contract})")
    print(f"third client answered {third}/{THIRD_REQUESTS}")
    said_162 = sum("(IB 162)" in out for out in outputs)
    print(f"violations (gateway refusals): {refused}; processes whose output says 162: {said_162}")
    print(f"first to last admitted: {span:.1f} s = {span / window:.2f} windows")
    print(f"most in any window: {busiest(times, window)} (IB allows {IB_LIMIT})")
    naive = (len(times) - 1) / span * window
    print(f"naive (N - 1) / span: {naive:.1f} per window (inflated by the first window's burst)")
    ceiling = share * window / (window + budget.slack)
    print(
        f"pacer's ceiling {share} × W / (W + slack): {ceiling:.2f} per window = "
        f"{ceiling / limit:.4f} of {limit}"
    )
    print(
        f"sustained: {rate:.1f} per window = {rate / limit:.3f} of IB's {IB_LIMIT} less the "
        f"reserve ({limit}), {rate / share:.3f} of the pacer's {share}"
    )
    verdict = "met" if rate / limit >= GOAL and refused == 0 else "NOT met"
    print(f"goal >= {GOAL} of {limit} with no violation: {verdict}")


if __name__ == "__main__":
    main()
