"""Several IB logins: the sustained small-bar request rate of 1, 2 and 4 logins together, as a
share of 60 × logins per 10 minutes.

IB paces each login on its own, so N logins can ask N times as much. This runs the real thing
with IB's windows compressed by a scale S: N embedded gateways, one per login, whose pacing
rules are scaled by S (ShiftedClock: 'now' is 2024-07-10, time passes at the wall clock's pace),
a warehouse seeded with the default universe's security master, a gateways file naming the N
logins (role data, one stock pinned to each) and one `ibw backfill` (5-s TRADES and MIDPOINT
bars; it starts one process per login). Each login has the same work, so the run with N logins
asks N times as much. Each gateway's pacer records what it admits; per login, from its first to
its last admitted request:
  sustained rate per window  k × W ÷ the mean time from a request to the k-th after it
                             (k = the pacer's 58 per window, W = 600 s × S)
summed over the logins ÷ (60 × N), plus each gateway's violations (must be 0). As in
`backfill_pacing.py`, no live service runs, so no reserve is kept for one (IBW_PACING_RESERVE=0);
the pacer cannot beat 58 × W / (W + slack) per login and window, 0.9651 of 60 at S = 0.05.
Goal: ≥ 0.95 × 60 × N for each N.

    uv run python bench/logins_pacing.py [--scale 0.05] [--history 16d]   # about 5 minutes
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import yaml
from backfill_pacing import Recorder, seed, sustained

from ibkr.pacer import RESERVE_ENV, PacingBudget
from ibsim.clock import ShiftedClock
from ibsim.config import PacingRules
from ibsim.server import GatewayThread
from tests.kit.gateway import NOW, gateway_config

IB_LIMIT = 60
GOAL = 0.95
STOCKS = ("AAPL", "MSFT", "SPY", "QQQ")  # one pinned to each login
LOGINS = (1, 2, 4)


def run(logins: int, scale: float, history: str, root: Path, seeded: Path) -> tuple[float, int]:
    """The logins' summed sustained rate per window, and the gateways' violations."""
    rules, budget = PacingRules().scaled(scale), replace(PacingBudget().scaled(scale), reserve=0)
    stocks = STOCKS[:logins]
    home = root / f"ibw-{logins}"
    shutil.copytree(seeded, home)
    universe = root / f"universe-{logins}.yml"
    universe.write_text(yaml.safe_dump({"entries": [{"symbol": "AAPL"}], "bars": [
        {"bar_size": "5 secs", "history": history, "what_to_show": what, "symbols": list(stocks)}
        for what in ("TRADES", "MIDPOINT")
    ]}))  # fmt: skip
    with ExitStack() as stack:
        gateways = [
            stack.enter_context(
                GatewayThread(gateway_config(clock=ShiftedClock(NOW), pacing=rules))
            )
            for _ in stocks
        ]
        recorders = [stack.enter_context(Recorder(gw)) for gw in gateways]
        path = root / f"gateways-{logins}.yml"
        path.write_text(yaml.safe_dump({"gateways": [
            {"name": f"login{n}", "host": "127.0.0.1", "port": gw.port, "role": "data",
             "symbols": [stock]}
            for n, (gw, stock) in enumerate(zip(gateways, stocks, strict=True), 1)
        ]}))  # fmt: skip
        env = {**os.environ, "IBW_GATEWAYS": str(path), "IBW_PACING_SCALE": str(scale),
               RESERVE_ENV: "0"}  # fmt: skip
        command = [sys.executable, "-m", "cli", "backfill", "--home", str(home),
                   "--universe", str(universe)]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
        elapsed = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr
    refused = sum(gw.gateway.pacer.refused for gw in gateways)
    rates = [
        sustained(sorted(r.at for r in recorder.seen), rules.window, budget.backfill_limit)
        for recorder in recorders
    ]
    asked = [len(recorder.seen) for recorder in recorders]
    print(
        f"{logins} login{'s' * (logins > 1)}: {sum(asked)} requests ({', '.join(map(str, asked))})"
        f" in {elapsed:.0f} s; per login {', '.join(f'{r:.1f}' for r in rates)} per window; "
        f"violations {refused}",
        flush=True,
    )
    return sum(rates), refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=float, default=0.05, help="IB's windows × this")
    parser.add_argument("--history", default="16d", help="5-s bars history per series")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with GatewayThread(gateway_config()) as gw:
            seed(gw, root / "seed")
        results = {n: run(n, args.scale, args.history, root, root / "seed") for n in LOGINS}
    for logins, (rate, refused) in results.items():
        share = rate / (IB_LIMIT * logins)
        verdict = "met" if share >= GOAL and refused == 0 else "NOT met"
        print(
            f"{logins} login{'s' * (logins > 1)}: {rate:.1f} per window = {share:.3f} of "
            f"{IB_LIMIT} × {logins}; goal ≥ {GOAL} with no violation: {verdict}"
        )


if __name__ == "__main__":
    main()
