"""`ibw snapshot [--date]`: tonight's account snapshot by hand, with a summary of what landed."""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

from engines.gateways_file import load_logins
from engines.snapshot import DATASETS, SnapshotSettings, snapshot_logins, store_snapshot
from ibfacts.resets import ib_day
from ibkr.errors import one_sentence
from warehouse.catalog import refresh_catalog
from warehouse.layout import home as default_home


def add_snapshot_command(commands: argparse._SubParsersAction) -> None:
    """Register `snapshot` on the `ibw` subcommands."""
    command = commands.add_parser("snapshot", help="snapshot positions, orders, fills and FA now")
    command.add_argument("--home", default=str(default_home()), help="warehouse ($IBW_HOME)")
    command.add_argument(
        "--date", type=date.fromisoformat, help="the day (default and only choice: IB's today)"
    )
    command.add_argument(
        "--deadline",
        type=_seconds,
        metavar="SECONDS",
        help=f"give up after this long while the gateway is down or silent, or IB resets "
        f"(default {SnapshotSettings.deadline:.0f}; at most a day)",
    )
    command.set_defaults(run=run_snapshot)


MAX_DEADLINE = 86_400.0  # a snapshot that waits longer would be the next night's


def _seconds(text: str) -> float:
    """An argparse type: a deadline in seconds, 1 to a day."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 1 <= seconds <= MAX_DEADLINE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a deadline; give seconds from 1 to {MAX_DEADLINE:.0f}"
        )
    return seconds


def run_snapshot(args: argparse.Namespace) -> int:
    console = Console()
    home = Path(args.home).resolve()
    config = SnapshotSettings.from_env()
    try:
        with console.status("Taking the account snapshot..."):
            taken = snapshot_logins(
                load_logins(), f"snapshot-{os.getpid()}", region=config.region,
                deadline=args.deadline or config.deadline,
                on_wait=lambda line: console.print(line, soft_wrap=True, markup=False),
            )  # fmt: skip
        snap, accounts = taken.snap, taken.accounts
        day = ib_day(taken.now)
        if args.date is not None and args.date != day:
            raise ValueError(
                f"IB reports positions, orders and fills for its today ({day}) only, so a "
                f"snapshot of {args.date} cannot be taken now; run it without --date."
            )
        stored = store_snapshot(home, day, snap, accounts, taken.source, taken.attempts)
        refresh_catalog(home)
    except Exception as exc:  # one sentence, whatever failed
        console.print(f"[red]ibw snapshot:[/red] {one_sentence(exc)}", soft_wrap=True)
        return 1
    table = Table(title=f"Account snapshot of {day}")
    table.add_column("dataset")
    table.add_column("rows", justify="right")
    for dataset in DATASETS:
        table.add_row(dataset, str(stored.rows[dataset]))
    console.print(table)
    console.print(
        f"Snapshot of {day} for {len(accounts)} account(s) ({', '.join(accounts)}): "
        f"{sum(stored.rows.values())} rows in {len(DATASETS)} datasets, "
        f"{stored.quarantined} quarantined, {stored.requests} requests, "
        f"{taken.attempts} attempt(s).",
        soft_wrap=True,
    )
    return 0
