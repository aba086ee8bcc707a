"""Backfill ingest: the CPU the backfill spends turning decoded bars into validated Parquet, as a
ratio to a plain polars `write_parquet` of the same bars.

Every bar the backfill receives goes through `engines.bar_batch.SessionBatch` (a session per bar,
the rows of the bars dataset), lineage columns, pandera (`warehouse.validation.split_valid`) and
`warehouse.bars.write_sessions` (merge with the year's file, atomic replace, fsync). If that
costs much more than writing the bars as they come, a long backfill is bound by its own CPU
rather than by IB. So this fetches a real year of AAPL 1-min RTH bars from the embedded gateway
(the planner's 26 requests, 25 × `10 D` and a `1 D`, decoded by ib_async into `BarData`) and
times, in CPU seconds (`time.process_time`, polars' threads included), best of N:
  project   SessionBatch.add per answer, take_finished, lineage, split_valid, write_sessions, one
            flush (and, on a second line, flushing every 20 answers as `Backfill._fill` does);
  baseline  `pl.DataFrame` built from the BarData attributes, then `df.write_parquet(path)`;
            also `write_parquet` alone of the frame the project path validated.
Goal: project / baseline ≤ 1.5.

    uv run python bench/backfill_ingest.py [--runs 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl
from ib_async import IB, BarData

from engines.backfill import FLUSH_REQUESTS
from engines.bar_batch import SessionBatch, bars_frame
from engines.bar_series import Target
from ibkr.durations import DurationTable
from ibkr.planner import PlannedRequest, Session, plan
from ibkr.universe import BarSpec
from ibsim.server import GatewayThread
from tests.kit.gateway import NOW, gateway_config
from warehouse import bars as bar_store
from warehouse.validation import split_valid

TARGET = Target(265598, "AAPL", "STK", "SMART", "NASDAQ", "USD", None, BarSpec("1 min", 365))
GOAL = 1.5
Answers = list[tuple[PlannedRequest, list[BarData]]]


def fetch(sessions: Sequence[Session]) -> Answers:
    """The planner's requests for the whole year, each answered by the embedded gateway."""
    planned = plan(
        TARGET.series, [s.day for s in sessions], sessions, table=DurationTable.default(),
        now=NOW, expiry=None,
    )  # fmt: skip
    answers: Answers = []
    with GatewayThread(gateway_config()) as gw:
        ib = IB()
        ib.connect("127.0.0.1", gw.port, clientId=91, timeout=10)
        try:
            for r in planned.requests:
                bars = ib.reqHistoricalData(
                    TARGET.contract(), r.end_date_time, r.duration, r.bar_size, r.what_to_show,
                    r.use_rth, 2, timeout=60,
                )  # fmt: skip
                answers.append((r, list(bars)))
        finally:
            ib.disconnect()
    return answers


def flush(batch: SessionBatch, home: Path) -> list[pl.DataFrame]:
    """`Backfill._flush` without the ledger: finished sessions -> lineage -> pandera -> Parquet.
    Returns the frame written (none when no session has finished)."""
    days, frame = batch.take_finished()
    if not days:
        return []
    rows = frame.with_columns(
        request_id=pl.lit("bench"),
        fetched_at=pl.lit(NOW).dt.cast_time_unit("us"),
        source=pl.lit("ib://127.0.0.1:4002"),
    )
    origin = f"bars {TARGET.key.con_id} 1 min TRADES rth {days[0]}..{days[-1]}"
    valid, rejected = split_valid(rows, bar_store.DATASET, origin)
    assert rejected.height == 0, rejected.head()
    bar_store.write_sessions(home, TARGET.key, valid, days)
    return [valid]


def project(
    sessions: Sequence[Session], answers: Answers, home: Path, every: int
) -> list[pl.DataFrame]:
    """Every answer into a batch, flushed after `every` answers and at the end; the frames
    written."""
    batch = SessionBatch(TARGET, sessions, [r for r, _ in answers])
    written = []
    for request, bars in answers:
        batch.add(request, bars)
        if batch.answered >= every:
            written += flush(batch, home)
    return written + flush(batch, home)


def stages(
    sessions: Sequence[Session], answers: Answers, home: Path, runs: int, per: float
) -> None:
    """The project's path cut at each step, best CPU of `runs` each, in µs per bar."""
    requests = [r for r, _ in answers]

    def added() -> SessionBatch:
        batch = SessionBatch(TARGET, sessions, requests)
        for request, bars in answers:
            batch.add(request, bars)
        return batch

    days, frame = added().take_finished()
    rows = frame.with_columns(
        request_id=pl.lit("bench"),
        fetched_at=pl.lit(NOW).dt.cast_time_unit("us"),
        source=pl.lit("ib://127.0.0.1:4002"),
    )
    valid, _ = split_valid(rows, bar_store.DATASET, "bench")
    steps: list[tuple[str, Callable[[int], object]]] = [
        ("bars_frame (part of add)", lambda n: [bars_frame(b, TARGET) for _, b in answers]),
        ("SessionBatch.add × answers", lambda n: added()),
        ("add + take_finished", lambda n: added().take_finished()),
        ("split_valid", lambda n: split_valid(rows, bar_store.DATASET, "bench")),
        (
            "write_sessions",
            lambda n: bar_store.write_sessions(home / f"{n}", TARGET.key, valid, days),
        ),
    ]
    print("\nstages of the project's path (CPU µs/bar, best of each):")
    for name, fn in steps:
        print(f"  {name:<30} {best_of(runs, fn)[0] * per:>6.2f}")


def baseline(bars: Sequence[BarData], path: Path) -> pl.DataFrame:
    """What a script without validation does: the bars' fields as columns, one Parquet file."""
    df = pl.DataFrame(
        {
            "date": [b.date for b in bars],
            "open": [b.open for b in bars],
            "high": [b.high for b in bars],
            "low": [b.low for b in bars],
            "close": [b.close for b in bars],
            "volume": [b.volume for b in bars],
            "average": [b.average for b in bars],
            "bar_count": [b.barCount for b in bars],
        }
    )
    df.write_parquet(path)
    return df


def best_of(runs: int, fn: Callable[[int], object]) -> tuple[float, float]:
    """The fewest CPU seconds and the fewest wall seconds of `runs` calls of fn(run number)."""
    cpu, wall = float("inf"), float("inf")
    for n in range(runs):
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        fn(n)
        c1, w1 = time.process_time(), time.perf_counter()
        cpu, wall = min(cpu, c1 - c0), min(wall, w1 - w0)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile the project's path")
    args = parser.parse_args()

    sessions = TARGET.expected(NOW, None)
    answers = fetch(sessions)
    bars = [b for _, received in answers for b in received]
    count = len(bars)
    print(
        f"AAPL 1 min TRADES RTH, {len(sessions)} sessions, {len(answers)} requests, "
        f"{count:,} bars (ib_async BarData)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        homes = iter(range(10_000))

        def fresh() -> Path:
            return root / f"home{next(homes)}"

        home = fresh()
        [valid] = project(sessions, answers, home, len(answers))  # warm-up, and the check
        assert valid.height == count, f"{valid.height} bars validated of {count}"
        assert bar_store.read_series(home, TARGET.key).height == count
        baseline(bars, root / "warm.parquet")

        one = best_of(args.runs, lambda n: project(sessions, answers, fresh(), len(answers)))
        cadence = best_of(args.runs, lambda n: project(sessions, answers, fresh(), FLUSH_REQUESTS))
        base = best_of(args.runs, lambda n: baseline(bars, root / f"base{n}.parquet"))
        write_only = best_of(args.runs, lambda n: valid.write_parquet(root / f"only{n}.parquet"))

        per = 1e6 / count
        print(f"\n{'path':<56} {'CPU µs/bar':>10} {'wall µs/bar':>11} {'ratio (CPU)':>11}")
        rows = [
            ("project, one flush", one),
            (f"project, a flush every {FLUSH_REQUESTS} answers (as Backfill)", cadence),
            ("baseline: pl.DataFrame(BarData fields) + write_parquet", base),
            ("write_parquet alone (the validated frame)", write_only),
        ]
        for name, (cpu, wall) in rows:
            print(f"{name:<56} {cpu * per:>10.2f} {wall * per:>11.2f} {cpu / base[0]:>11.2f}")
        ratio = one[0] / base[0]
        verdict = "met" if ratio <= GOAL else "NOT met"
        print(f"\ngoal project/baseline <= {GOAL} (CPU, one flush): {ratio:.2f}, {verdict}")
        if args.profile:
            stages(sessions, answers, root / "stages", args.runs, per)
            profiler = cProfile.Profile()
            profiler.runcall(project, sessions, answers, fresh(), len(answers))
            stats = pstats.Stats(profiler).strip_dirs()
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
