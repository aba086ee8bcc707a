"""`ibw gateway`: the embedded IB Gateway in the foreground, with the simulator's own options."""

from __future__ import annotations

import argparse

from ibsim import cli as gateway_cli


def add_gateway_command(commands: argparse._SubParsersAction) -> None:
    """Register `gateway` on the `ibw` subcommands."""
    gateway = commands.add_parser("gateway", help="run the embedded IB Gateway in the foreground")
    gateway_cli.add_arguments(gateway)
    gateway.set_defaults(run=gateway_cli.run)
