"""`ibw verify`: check the lake against the ledger, move unreadable files aside, and return lost
sessions to the gaps so the next backfill refetches them. Exits 1 when it found something."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ibkr.errors import one_sentence
from warehouse.catalog import refresh_catalog
from warehouse.integrity import Verification, describe_lost, verify
from warehouse.layout import home as default_home
from warehouse.layout import lake_dir


def add_verify_command(commands: argparse._SubParsersAction) -> None:
    """Register `verify` on the `ibw` subcommands."""
    command = commands.add_parser(
        "verify", help="check every lake file and the ledger against the bars; repair both"
    )
    command.add_argument("--home", default=str(default_home()), help="warehouse ($IBW_HOME)")
    command.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    console = Console()
    home = Path(args.home).resolve()
    if not lake_dir(home).is_dir():
        console.print(
            f"[red]ibw verify:[/red] no warehouse at {home} yet: check --home or $IBW_HOME.",
            soft_wrap=True,
        )
        return 1
    try:
        with console.status("Reading every file of the lake..."):
            found = verify(home)
        if found.set_aside:
            refresh_catalog(home)  # views of a dataset whose last file went are dropped
    except Exception as exc:  # one sentence, whatever failed
        console.print(f"[red]ibw verify:[/red] {one_sentence(exc)}", soft_wrap=True)
        return 1
    for line in _lines(home, found):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    return 0 if found.clean else 1


def _lines(home: Path, found: Verification) -> list[str]:
    lines = [f"Checked {found.files} files and the ledger of {found.series} bar series."]
    for moved in found.set_aside:
        lines.append(f"Unreadable: {moved.path} ({moved.reason}); moved to {moved.moved_to}.")
    for series, days in found.returned.items():
        lines.append(f"{describe_lost(home, series, days)}; returned to the gaps.")
    for series in found.busy:
        lines.append(f"{series.label}: being filled by another process; not checked.")
    if found.clean:
        lines.append("The lake and the ledger agree.")
        return lines
    done = []
    if found.set_aside:
        done.append(_count(len(found.set_aside), "unreadable file") + " moved aside")
    if found.returned:
        sessions = sum(len(days) for days in found.returned.values())
        done.append(
            f"{_count(sessions, 'session')} of {_count(len(found.returned), 'series', 'series')} "
            "returned to the gaps"
        )
    lines.append(f"{', '.join(done)}: run `ibw backfill` to refetch what was lost.")
    return lines


def _count(n: int, noun: str, plural: str = "") -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
