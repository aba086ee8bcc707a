"""Option quotes: seconds and market-data lines to picture a chain of N options, against the
least time IB's rules allow.

Runs `contracts` and `option_chains` through Dagster against an embedded gateway pinned to
2024-07-10 (its market-data lines set to IB's default 100), then pictures the day's chain with
`engines.option_quotes` at 100 lines, and prints:
  lines peak / lines allowed       (goal: at most 1.00)
  seconds / lower bound            until the gateway has the last cancel (its lines are free);
                                   the bound is max(floor((2N - 1) / 50), ceil(N / lines) × t1)
                                   + t1: a request and a cancel per option, no more than IB's 50
                                   messages in any second, no more than `lines` open at once,
                                   each for at least t1 (one option's picture alone, measured in
                                   the same run), and the last picture's own t1.

ib_async throttles itself to 45 messages a second, under IB's 50, so 50/45 = 1.11 is the best
the ratio can be for a chain large enough that the messages, not the lines, bound it.

    uv run python bench/option_quotes.py [--window 21] [--moneyness 0.05]     # about a minute
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import yaml

from assets.resources import IBResource, UniverseResource, WarehouseResource
from assets.trading_days import instance_with_days
from assets.universe.contracts import contracts
from assets.universe.option_chains import option_chains
from engines.option_quotes import QuoteSettings, chain_of, contract_of
from ibkr.client import IBClient
from ibkr.connection import ConnectionSettings
from ibkr.option_quotes import lower_bound_seconds, take_quotes
from ibsim import GatewayConfig, GatewayThread, ManualClock

NOW = datetime(2024, 7, 10, 15, 0, tzinfo=UTC)
LINES = 100  # IB's default per login
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=21, help="days to expiry (default 21)")
    parser.add_argument("--moneyness", type=float, default=0.05, help="± around 1 (0.05)")
    args = parser.parse_args()
    day = NOW.date()
    config = GatewayConfig(port=0, clock=ManualClock(NOW), market_data_lines=LINES)
    with (
        tempfile.TemporaryDirectory() as tmp,
        GatewayThread(config) as gateway,
        instance_with_days(day.isoformat()) as instance,
    ):
        home = Path(tmp) / "ibw"
        universe = Path(tmp) / "universe.yml"
        window = {
            "underlying": "SPY",
            "max_days_to_expiry": args.window,
            "moneyness": [1 - args.moneyness, 1 + args.moneyness],
        }
        universe.write_text(yaml.safe_dump({"entries": [{"symbol": "SPY"}], "options": [window]}))
        resources = {
            "ib": IBResource(port=gateway.port),
            "warehouse": WarehouseResource(home=str(home)),
            "universe": UniverseResource(path=str(universe)),
        }
        dg.materialize([contracts], resources=resources, run_config=QUIET)
        chain_run = dg.materialize(
            [option_chains], resources=resources, partition_key=day.isoformat(),
            run_config=QUIET, instance=instance,
        )  # fmt: skip
        assert chain_run.success
        options = [contract_of(r) for r in chain_of(home, day).iter_rows(named=True)]
        settings = ConnectionSettings(port=gateway.port, client_id=901)
        client = IBClient.open(settings, "bench-option-quotes")
        try:
            one = client.run(take_quotes(client, options[:1], 1, QuoteSettings.wait))
            run = client.run(take_quotes(client, options, LINES, QuoteSettings.wait))
        finally:
            client.close()
    bound = lower_bound_seconds(len(options), LINES, one.seconds)
    print(f"chain {len(options)} options, one picture alone {one.seconds * 1000:.1f} ms")
    print(f"pictured {len(run.rows)} ({run.incomplete} incomplete, {len(run.errors)} refused)")
    peak, seconds = run.lines_peak, run.seconds
    print(f"lines peak / lines allowed   {peak} / {LINES} = {peak / LINES:.2f}")
    print(f"seconds / lower bound        {seconds:.2f} / {bound:.2f} = {seconds / bound:.2f}")


if __name__ == "__main__":
    main()
