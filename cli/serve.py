"""`ibw serve`: Dagster's production processes on the warehouse home: the webserver and exactly
one daemon (each starts the code location of workspace.yaml as its own gRPC server; the daemon
launches a process per run). No embedded gateway: runs reach IB at IB_HOST / IB_PORT."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from rich.console import Console

from cli.instance import ROOT, InstanceSettingsError, write_instance
from cli.process_group import POLL, ProcessGroup, catch_stop_signals
from ibkr.connection import ConnectionSettings
from ibsim.cli import port_number
from warehouse.layout import home as default_home

WORKSPACE = ROOT / "workspace.yaml"
WEBSERVER = [sys.executable, "-m", "dagster_webserver", "-w", str(WORKSPACE)]
DAEMON = [sys.executable, "-m", "dagster._daemon", "run", "-w", str(WORKSPACE)]
LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # where a wildcard bind is seen answering


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    """Register `serve` on the `ibw` subcommands."""
    serve = commands.add_parser(
        "serve", help="Dagster's webserver and daemon as production processes (no gateway)"
    )
    serve.add_argument("--home", default=str(default_home()), help="warehouse home ($IBW_HOME)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="the webserver's bind address (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port",
        type=partial(port_number, lowest=1),
        default=3000,
        help="the webserver's port (default 3000)",
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    return run_serve(Console(), Path(args.home).resolve(), args.host, args.port)


def run_serve(console: Console, home: Path, host: str, port: int) -> int:
    """Serve until a stop signal (exit 0) or until one of the two processes dies (its code)."""
    say = partial(console.print, soft_wrap=True, highlight=False)
    try:
        instance = write_instance(home, os.environ)
    except InstanceSettingsError as exc:
        say(f"[red]ibw serve:[/red] {exc}")
        return 2
    if (busy := _cannot_listen(host, port)) is not None:
        say(f"[red]ibw serve:[/red] {busy}")
        return 2
    gateway = ConnectionSettings.from_env()
    env = {**os.environ, **instance.env, "IBW_HOME": str(home)}
    say(
        f"Starting the Dagster webserver on http://{host}:{port} and its daemon (warehouse "
        f"{home}; Dagster's instance: {instance.storage}; IB Gateway at "
        f"{gateway.host}:{gateway.port}). SIGTERM or Ctrl-C stops both.",
        markup=False,
    )
    catch_stop_signals()
    dagster = ProcessGroup(ROOT, env)
    try:
        ended = _serve_until_one_ends(dagster, host, port, say)
    except KeyboardInterrupt:
        ended = None
    finally:
        dagster.stop()
    if ended is None:
        say("Stopped the Dagster webserver and its daemon.")
        return 0
    name, code = ended
    say(
        f"[red]ibw serve:[/red] the Dagster {name} exited with code {code}, so the rest was "
        "stopped; its own output above says why."
    )
    return code or 1


def _serve_until_one_ends(
    dagster: ProcessGroup, host: str, port: int, say: Callable[..., None]
) -> tuple[str, int]:
    """Start the webserver and the daemon; the name and exit code of the first to exit."""
    # in a log or a pipe, one JSON object a line instead of terminal colour codes
    logs = ["--log-format", "colored" if sys.stdout.isatty() else "json"]
    names = {
        dagster.start([*WEBSERVER, "-h", host, "-p", str(port), *logs]).pid: "webserver",
        dagster.start([*DAEMON, *logs]).pid: "daemon",
    }
    serving = False
    while (ended := dagster.ended()) is None:
        if not serving and _answers(LOOPBACK.get(host, host), port):
            serving = True
            say(f"The Dagster webserver answers on http://{host}:{port}.", markup=False)
        time.sleep(POLL)
    return names[ended.pid], ended.returncode


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the webserver could not listen on host:port, checked before anything starts."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the webserver binds
            probe.bind(address)
    except OSError as exc:
        return (
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --port or "
            "--host, or stop what uses it."
        )
    return None


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True
