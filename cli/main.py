"""The `ibw` command line: the parser, one subcommand per verb module, and `main`. Every command
ends with one sentence, never a traceback."""

from __future__ import annotations

import argparse
import logging
import sys

from cli.backfill import add_backfill_commands
from cli.dev import add_dev_command
from cli.gateway import add_gateway_command
from cli.live import add_live_command
from cli.order import add_order_commands
from cli.query import add_query_command
from cli.serve import add_serve_command
from cli.snapshot import add_snapshot_command
from cli.universe import add_universe_command
from cli.verify import add_verify_command
from shared_state.database import SharedStateError
from warehouse.layout import home as default_home


def _demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo_command  # Dagster loads only when the demo runs

    return run_demo_command(args)


def main(argv: list[str] | None = None) -> int:
    # ib_async logs every failure it raises too; ours are one sentence, so its lines would repeat
    # them with a traceback's worth of detail
    logging.getLogger("ib_async").addHandler(logging.NullHandler())
    logging.getLogger("ib_async").propagate = False
    parser = argparse.ArgumentParser(prog="ibw", description="ib-warehouse: IB data platform.")
    commands = parser.add_subparsers(dest="command", required=True)

    add_gateway_command(commands)
    demo = commands.add_parser("demo", help="universe and option chains into a fresh warehouse")
    demo.add_argument("--home", default=str(default_home()), help="warehouse home ($IBW_HOME)")
    demo.set_defaults(run=_demo)
    add_dev_command(commands)
    add_serve_command(commands)
    add_universe_command(commands)
    add_backfill_commands(commands)
    add_snapshot_command(commands)
    add_query_command(commands)
    add_live_command(commands)
    add_order_commands(commands)
    add_verify_command(commands)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # for commands that fan out
    try:
        return args.run(args)
    except SharedStateError as exc:  # any command that paces or locks, with PostgreSQL set
        print(f"ibw {args.command}: {exc}", file=sys.stderr)
        return 1
