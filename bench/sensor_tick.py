"""Sensor tick: how long one evaluation of the backfill sensor takes for 500 contracts, against
Dagster's 60-second limit on a sensor evaluation.

The sensor estimates, every 30 s, what each bar series still lacks (ledger, cached head, planner)
without asking IB anything but the time; a tick that outgrows Dagster's limit times out and
requests nothing, so the backfill stops. This builds a warehouse whose security master holds 500
synthetic NASDAQ stocks (one real row of the seeded master, with con_id and symbol varied), a
universe with two bar specs (1 day over 20 y, 1 min over 30 d: 1,000 series), and the first 250
contracts fully backfilled (ledgers complete, head timestamps cached); the other 250 are new.
Against an embedded gateway (the sensor asks it for the time) it times in wall seconds, with a
fresh cursor and Dagster test instance:
  shipped    the sensor as it is: it stops when MAX_RUNS_PER_TICK (20) runs of
             CONTRACTS_PER_RUN (10) contracts are due, so it estimates the 250 complete
             contracts and the first 200 new ones;
  full walk  the same with the cap lifted, so it estimates all 1,000 series: what a tick costs
             when nothing stops it early (when every series is complete, it walks them all).
The first, cold tick is reported apart; then best of 3. Ratio = tick seconds ÷ 60. With
`--complete 500` every series is complete, the steady state: the shipped tick then walks all
1,000 series and requests nothing.

    uv run python bench/sensor_tick.py [--complete 250]    # about 70 s, a third of it setup
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

import assets.bars.backfill_sensor as sensors
from assets import bars
from assets.resources import IBResource, UniverseResource, WarehouseResource
from assets.universe.contracts import contracts
from engines.bar_series import Estimate, Target, targets
from ibkr.sessions import _table as session_tables
from ibsim.server import GatewayThread
from tests.kit.gateway import NOW, gateway_config
from warehouse import heads, ledger
from warehouse.parquet import read_dataset, write_partition

CONTRACTS = 500
COMPLETE = 250  # the first contracts, by con_id: both series complete, heads cached
FIRST_CON_ID = 900_000_001
HEAD = datetime(1980, 12, 12, 14, 30, tzinfo=UTC)
LIMIT = 60.0  # Dagster's default sensor evaluation timeout, seconds
BARS = [{"bar_size": "1 day", "history": "20y"}, {"bar_size": "1 min", "history": "30d"}]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def master(gw: GatewayThread, root: Path) -> pl.DataFrame:
    """500 current NASDAQ stocks, each a copy of the seeded master's AAPL row."""
    seed = root / "seed"
    resources = {
        "ib": IBResource(port=gw.port, client_id=350),
        "warehouse": WarehouseResource(home=str(seed)),
        "universe": UniverseResource(),
    }
    assert dg.materialize([contracts], resources=resources, run_config=QUIET).success
    aapl = read_dataset(seed, "security_master").filter(pl.col("con_id") == 265598).head(1)
    symbols = [f"Z{n:04d}" for n in range(CONTRACTS)]
    return pl.concat([aapl] * CONTRACTS).with_columns(
        con_id=pl.Series([FIRST_CON_ID + n for n in range(CONTRACTS)], dtype=pl.Int64),
        symbol=pl.Series(symbols),
        local_symbol=pl.Series(symbols),
        primary_exchange=pl.lit("NASDAQ"),
        long_name=pl.Series([f"Synthetic {s}" for s in symbols]),
    )


def backfilled(home: Path, found: list[Target], contracts: int) -> int:
    """Ledgers complete and heads cached for the first `contracts`; returns the series."""
    done = 0
    for target in found:
        if target.con_id >= FIRST_CON_ID + contracts:
            continue
        days = [s.day for s in target.expected(NOW, HEAD)]
        # Settled as IB-confirmed empty: the sensor prices it as it prices complete, and needs
        # no bars file per year (complete sessions without one count as lost and are gaps).
        ledger.record(home, target.key, days, "empty", NOW)
        heads.write_head(home, target.con_id, target.what_to_show, target.spec.use_rth, HEAD, NOW)
        done += 1
    return done


def tick(sensor: dg.SensorDefinition, resources: dict) -> tuple[float, int, int]:
    """One evaluation with a fresh cursor and instance: (wall seconds, runs, series estimated)."""
    estimated = 0
    real = sensors.estimate

    def counting(*args, **kwargs) -> Estimate:
        nonlocal estimated
        estimated += 1
        return real(*args, **kwargs)

    sensors.estimate = counting  # type: ignore[assignment]
    try:
        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(instance=instance, resources=resources)
            started = time.perf_counter()
            result = sensor(context)
            seconds = time.perf_counter() - started
    finally:
        sensors.estimate = real
    assert isinstance(result, dg.SensorResult), result
    return seconds, len(result.run_requests or []), estimated


def report(name: str, ticks: list[tuple[float, int, int]]) -> None:
    cold, warm = ticks[0], min(ticks[1:])
    for label, (seconds, runs, estimated) in (("cold", cold), ("best of 3", warm)):
        print(
            f"{name:<10} {label:<10} {seconds:>7.2f} s  {runs:>4} runs  {estimated:>5} series  "
            f"{seconds / estimated * 1e3:>6.2f} ms/series  ratio {seconds / LIMIT:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--complete", type=int, default=COMPLETE, help="contracts backfilled")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the sensor logs a line per tick
    with tempfile.TemporaryDirectory() as tmp, GatewayThread(gateway_config()) as gw:
        root = Path(tmp)
        home = root / "ibw"
        write_partition(home, "security_master", master(gw, root))
        universe = root / "universe.yml"
        universe.write_text(yaml.safe_dump({"entries": [{"symbol": "AAPL"}], "bars": BARS}))
        specs = UniverseResource(path=str(universe)).load().bars
        found = targets(home, specs)
        started = time.perf_counter()
        complete = backfilled(home, found, args.complete)
        print(
            f"{CONTRACTS} contracts × {len(specs)} specs = {len(found)} series, {complete} "
            f"complete (setup {time.perf_counter() - started:.0f} s)"
        )
        resources = {
            "ib": IBResource(port=gw.port, client_id=360),
            "warehouse": WarehouseResource(home=str(home)),
            "universe": UniverseResource(path=str(universe)),
        }
        domain = dg.Definitions.merge(
            bars.definitions(), dg.Definitions(assets=[contracts], resources=resources)
        )
        sensor = domain.resolve_sensor_def("bars_backfill")
        session_tables.cache_clear()  # the first tick builds them, as in a fresh code server
        shipped = [tick(sensor, resources) for _ in range(4)]
        cap = sensors.MAX_RUNS_PER_TICK
        sensors.MAX_RUNS_PER_TICK = 10**9
        try:
            session_tables.cache_clear()
            walk = [tick(sensor, resources) for _ in range(4)]
        finally:
            sensors.MAX_RUNS_PER_TICK = cap
    print(f"\nwall seconds of one tick; ratio = seconds / {LIMIT:g} (Dagster's limit)")
    report("shipped", shipped)
    report("full walk", walk)


if __name__ == "__main__":
    main()
