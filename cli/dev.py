"""`ibw dev`: the embedded gateway, Dagster's webserver and its daemon, stopped together."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from rich.console import Console

from ibsim import GatewayConfig, GatewayThread
from ibsim.cli import load_scenario, port_number
from warehouse.layout import home as default_home

ROOT = Path(__file__).resolve().parents[1]
# Not in the repository root: `dagster dev` warns about a dagster.yaml in its working directory
# that is not DAGSTER_HOME's.
INSTANCE_SETTINGS = ROOT / "pipelines" / "dagster.yaml"
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
STOP_TIMEOUT = 20.0  # Dagster's own shutdown takes ~6 s (its daemon's threads: 5 s)
PROCESSES = Path("/proc")


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
    shutil.copy(INSTANCE_SETTINGS, dagster_home / "dagster.yaml")
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
        command = [*DAGSTER_DEV, "-w", str(ROOT / "workspace.yaml")]
        command += ["-h", "127.0.0.1", "-p", str(port)]
        console.print(
            f"Embedded IB Gateway on 127.0.0.1:{gateway.port}; Dagster UI on "
            f"http://127.0.0.1:{port} (warehouse {home}). Ctrl-C stops both."
        )
        # SIGINT too: a shell may have started `ibw` ignoring it, and Dagster would inherit that.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.default_int_handler)
        # A process group of its own: a terminal's Ctrl-C reaches `ibw` alone, and every process
        # Dagster starts (webserver, daemon, code server, run workers) is found by the group's id.
        dagster = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        try:
            code = dagster.wait()
        except KeyboardInterrupt:
            _stop(dagster)
            console.print("Stopped the Dagster webserver, its daemon and the embedded gateway.")
            return 0
        _stop(dagster)  # what outlived it
    console.print(f"[red]ibw dev:[/red] dagster dev exited with code {code}.")
    return code or 1


def _stop(dagster: subprocess.Popen) -> None:
    """SIGTERM to Dagster's process group, as a terminal's Ctrl-C reaches a plain `dagster dev`
    (Dagster reads it as an interrupt: the services shut down, a run in flight records its
    failure); SIGKILL for what still runs after STOP_TIMEOUT."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
    group, deadline = dagster.pid, time.monotonic() + STOP_TIMEOUT
    with contextlib.suppress(ProcessLookupError):  # an empty group: nothing left to stop
        os.killpg(group, signal.SIGTERM)
        while dagster.poll() is None or runs_in_group(group):
            if time.monotonic() > deadline:
                os.killpg(group, signal.SIGKILL)
                break
            time.sleep(0.1)
    dagster.wait()


def runs_in_group(group: int) -> bool:
    """Whether a process of `group` still runs; an ended one waiting to be reaped does not."""
    if not PROCESSES.is_dir():  # no /proc: any member, ended or not
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in PROCESSES.glob("[0-9]*/stat"):
        try:  # "pid (name) state ppid pgrp ...": the name may hold spaces and parentheses
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue  # ended while we looked
        if int(pgrp) == group and state != "Z":
            return True
    return False
