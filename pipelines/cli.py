"""The `ibw` command line."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from ibkr.connection import GatewayUnavailable
from ibsim import cli as gateway_cli


def _demo(args: argparse.Namespace) -> int:
    from pipelines.demo import run_demo

    console = Console()
    try:
        result = run_demo(console)
    except GatewayUnavailable as exc:
        console.print(f"[red]ibw demo:[/red] {exc}")
        return 1
    console.print(
        f"Fetched {result.bars} bars of AAPL (conId {result.con_id}) from the embedded gateway "
        f"on port {result.port}, {result.first} to {result.last} UTC."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ibw", description="ib-warehouse: IB data platform.")
    commands = parser.add_subparsers(dest="command", required=True)
    gateway = commands.add_parser("gateway", help="run the embedded IB Gateway in the foreground")
    gateway_cli.add_arguments(gateway)
    gateway.set_defaults(run=gateway_cli.run)
    demo = commands.add_parser("demo", help="start an embedded gateway and fetch AAPL bars")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
