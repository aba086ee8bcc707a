"""`ibw dev`: the embedded gateway, Dagster's webserver and its daemon, stopped together."""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

from rich.console import Console

from cli.instance import ROOT, InstanceSettingsError, write_instance
from cli.process_group import ProcessGroup, catch_stop_signals
from ibsim import GatewayConfig, GatewayThread
from ibsim.cli import load_scenario, port_number
from warehouse.layout import home as default_home

DEMO_ACCOUNTS = Path(__file__).with_name("demo_accounts.yml")  # an FA master, two sub-accounts
# `dg dev` wraps this same `dagster dev` and needs the dagster-dg-cli package and a dg project
# layout; until that pays, the command stays and only its "use dg dev" notice is silenced.
DAGSTER_DEV = [
    sys.executable,
    "-W",
    "ignore:Function `dev_command` is superseded",
    "-m",
    "dagster",
    "dev",
]


def add_dev_command(commands: argparse._SubParsersAction) -> None:
    """Register `dev` on the `ibw` subcommands."""
    dev = commands.add_parser("dev", help="embedded gateway + Dagster webserver and daemon")
    dev.add_argument("--home", default=str(default_home()), help="warehouse home ($IBW_HOME)")
    dev.add_argument(
        "--port",
        type=partial(port_number, lowest=1),
        default=3000,
        help="Dagster UI port (default 3000)",
    )
    dev.add_argument("--gateway-port", type=port_number, default=4002, help="embedded gateway port")
    dev.add_argument(
        "--scenario", default=str(DEMO_ACCOUNTS), help="the gateway's accounts (YAML scenario)"
    )
    dev.set_defaults(run=_dev)


def _dev(args: argparse.Namespace) -> int:
    home, scenario = Path(args.home).resolve(), Path(args.scenario)
    return run_dev(Console(), home, args.port, args.gateway_port, scenario)


def run_dev(console: Console, home: Path, port: int, gateway_port: int, scenario: Path) -> int:
    """`scenario`: the accounts behind the embedded gateway (default: the demo's FA master)."""
    try:
        instance = write_instance(home, os.environ)
    except InstanceSettingsError as exc:
        console.print(f"[red]ibw dev:[/red] {exc}", soft_wrap=True)
        return 2
    book = load_scenario(scenario)
    with GatewayThread(GatewayConfig(port=gateway_port, book=book)) as gateway:
        env = {
            **os.environ,
            **instance.env,
            "IBW_HOME": str(home),
            "IB_HOST": "127.0.0.1",
            "IB_PORT": str(gateway.port),
            "IBW_SNAPSHOT_REGION": "none",  # the embedded gateway keeps no IB reset window
        }
        command = [*DAGSTER_DEV, "-w", str(ROOT / "workspace.yaml")]
        command += ["-h", "127.0.0.1", "-p", str(port)]
        console.print(
            f"Embedded IB Gateway on 127.0.0.1:{gateway.port}; Dagster UI on "
            f"http://127.0.0.1:{port} (warehouse {home}; Dagster's instance: {instance.storage}). "
            "Ctrl-C stops both.",
            soft_wrap=True,
        )
        catch_stop_signals()
        dagster = ProcessGroup(ROOT, env)
        try:
            code = dagster.start(command).wait()
        except KeyboardInterrupt:
            dagster.stop()
            console.print("Stopped the Dagster webserver, its daemon and the embedded gateway.")
            return 0
        dagster.stop()  # what outlived it
    console.print(f"[red]ibw dev:[/red] dagster dev exited with code {code}.")
    return code or 1
