"""`ibw universe`: the universe file resolved into the security master, without Dagster.

The same work as the `contracts` asset (`engines.security_master`), so a user pointed at a real
gateway builds the security master, and then plans and backfills, from the command line alone.
"""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cli.interrupts import Interrupted, interruptible
from engines.security_master import UniverseReport, build_security_master
from engines.universe_file import load_universe, universe_path
from ibkr.client import IBClient
from ibkr.connection import ConnectionSettings
from ibkr.contracts import Resolution
from ibkr.errors import one_sentence
from warehouse.layout import home as default_home


def add_universe_command(commands: argparse._SubParsersAction) -> None:
    """Register `universe` on the `ibw` subcommands."""
    command = commands.add_parser(
        "universe", help="resolve the universe file into the security master"
    )
    command.add_argument("--home", default=str(default_home()), help="warehouse ($IBW_HOME)")
    command.add_argument("--universe", help="universe file (default: $IBW_UNIVERSE)")
    command.set_defaults(run=run_universe)


def run_universe(args: argparse.Namespace) -> int:
    console = Console()
    settings = ConnectionSettings.from_env()
    try:
        with interruptible():
            universe = load_universe(args.universe or universe_path())
            total = len(universe.entries)

            def said(index: int, resolution: Resolution) -> None:
                console.print(
                    f"[{index}/{total}] {_outcome(resolution)}",
                    soft_wrap=True, highlight=False, markup=False,
                )  # fmt: skip

            client = IBClient.open(settings, f"universe-{os.getpid()}")
            try:
                report = build_security_master(
                    client, universe, Path(args.home).resolve(), uuid.uuid4().hex,
                    f"ib://{settings.host}:{settings.port}", on_entry=said,
                )  # fmt: skip
            finally:
                client.close()
    except Interrupted as interrupted:
        console.print(
            "[red]ibw universe:[/red] interrupted; the security master is as it was.",
            soft_wrap=True,
        )
        return interrupted.exit_code
    except Exception as exc:  # one sentence, whatever failed
        console.print(f"[red]ibw universe:[/red] {one_sentence(exc)}", soft_wrap=True)
        return 1
    console.print(_summary_table(report))
    console.print(_summary(report), soft_wrap=True, highlight=False)
    for failure in report.failures:
        console.print(f"[yellow]{failure.error}[/yellow]", soft_wrap=True)
    return 1 if report.failures else 0  # scripts see that an entry did not resolve


def _outcome(resolution: Resolution) -> str:
    """What one entry found, or its one sentence (which names the entry itself)."""
    if resolution.error is not None:
        return f"failed: {resolution.error}"
    found = len(resolution.details)
    return f"{resolution.entry.name}: {found} contract{'s' if found != 1 else ''}"


def _summary_table(report: UniverseReport) -> Table:
    table = Table(title="Security master")
    table.add_column("security type")
    table.add_column("contracts", justify="right")
    for sec_type, count in report.by_sec_type.items():
        table.add_row(sec_type, str(count))
    table.add_row("all", str(report.contracts), style="bold")
    return table


def _summary(report: UniverseReport) -> str:
    failed = len(report.failures)
    return (
        f"{report.entries} entries, {failed} failed: {report.contracts} contracts "
        f"({report.new} new, {report.changed} changed, {report.unchanged} unchanged) in the "
        f"security master; {report.quarantined} rows quarantined. Query them as "
        "security_master_current."
    )
