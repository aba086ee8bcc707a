"""The `ibw` command line: every command ends with one sentence, never a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial
from pathlib import Path

from rich.console import Console

from ibkr.errors import one_sentence
from ibsim import cli as gateway_cli
from pipelines.backfill import add_backfill_commands
from pipelines.dev import DEMO_ACCOUNTS
from pipelines.live import add_live_command
from pipelines.orders_cli import add_order_commands
from pipelines.query import add_query_command
from pipelines.snapshot import add_snapshot_command
from pipelines.verify import add_verify_command
from warehouse.layout import home as default_home


def _demo(args: argparse.Namespace) -> int:
    from pipelines.demo import run_demo

    console = Console()
    try:
        run_demo(console, Path(args.home).resolve())
    except Exception as exc:  # the demo's last word is one sentence, whatever failed
        console.print(f"[red]ibw demo:[/red] {one_sentence(_root_cause(exc))}")
        return 1
    return 0


def _dev(args: argparse.Namespace) -> int:
    from pipelines.dev import run_dev

    home, scenario = Path(args.home).resolve(), Path(args.scenario)
    return run_dev(Console(), home, args.port, args.gateway_port, scenario)


def _root_cause(exc: BaseException) -> BaseException:
    """Dagster wraps a failed step's exception; users need the one that explains it."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def main(argv: list[str] | None = None) -> int:
    # ib_async logs every failure it raises too; ours are one sentence, so its lines would repeat
    # them with a traceback's worth of detail
    logging.getLogger("ib_async").addHandler(logging.NullHandler())
    logging.getLogger("ib_async").propagate = False
    parser = argparse.ArgumentParser(prog="ibw", description="ib-warehouse: IB data platform.")
    commands = parser.add_subparsers(dest="command", required=True)

    gateway = commands.add_parser("gateway", help="run the embedded IB Gateway in the foreground")
    gateway_cli.add_arguments(gateway)
    gateway.set_defaults(run=gateway_cli.run)

    demo = commands.add_parser("demo", help="universe and option chains into a fresh warehouse")
    demo.add_argument("--home", default=str(default_home()), help="warehouse home ($IBW_HOME)")
    demo.set_defaults(run=_demo)

    dev = commands.add_parser("dev", help="embedded gateway + Dagster webserver and daemon")
    dev.add_argument("--home", default=str(default_home()), help="warehouse home ($IBW_HOME)")
    dev.add_argument(
        "--port",
        type=partial(gateway_cli.port_number, lowest=1),
        default=3000,
        help="Dagster UI port (default 3000)",
    )
    dev.add_argument(
        "--gateway-port", type=gateway_cli.port_number, default=4002, help="embedded gateway port"
    )
    dev.add_argument(
        "--scenario", default=str(DEMO_ACCOUNTS), help="the gateway's accounts (YAML scenario)"
    )
    dev.set_defaults(run=_dev)

    add_backfill_commands(commands)
    add_snapshot_command(commands)
    add_query_command(commands)
    add_live_command(commands)
    add_order_commands(commands)
    add_verify_command(commands)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
