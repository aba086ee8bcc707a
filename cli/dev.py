"""`ibw dev`: the embedded gateway, Dagster's webserver and its daemon, stopped together."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

from rich.console import Console

from ibsim import GatewayConfig, GatewayThread
from ibsim.cli import load_scenario, port_number
from warehouse.layout import home as default_home

ROOT = Path(__file__).resolve().parents[1]
DEMO_ACCOUNTS = Path(__file__).with_name("demo_accounts.yml")  # an FA master, two sub-accounts
STOP_TIMEOUT = 30.0


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
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    book = load_scenario(scenario)
    with GatewayThread(GatewayConfig(port=gateway_port, book=book)) as gateway:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home),
            "IBW_HOME": str(home),
            "IB_HOST": "127.0.0.1",
            "IB_PORT": str(gateway.port),
            "IBW_SNAPSHOT_REGION": "none",  # the embedded gateway keeps no IB reset window
        }
        command = [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml")]
        command += ["-h", "127.0.0.1", "-p", str(port)]
        console.print(
            f"Embedded IB Gateway on 127.0.0.1:{gateway.port}; Dagster UI on "
            f"http://127.0.0.1:{port} (warehouse {home}). Ctrl-C stops both."
        )
        dagster = subprocess.Popen(command, cwd=ROOT, env=env)
        stop = _forward_stop_signals(dagster)
        code = dagster.wait()
        if stop.requested:
            console.print("Stopped the Dagster webserver, its daemon and the embedded gateway.")
            return 0
    console.print(f"[red]ibw dev:[/red] dagster dev exited with code {code}.")
    return code or 1


class _StopRequest:
    requested = False


def _forward_stop_signals(child: subprocess.Popen) -> _StopRequest:
    """On SIGINT or SIGTERM, stop Dagster through its parent process (by pid), then wait."""
    stop = _StopRequest()

    def handler(signum, frame) -> None:
        stop.requested = True
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return stop
