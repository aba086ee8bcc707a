"""Running the gateway in the foreground: logs a line per client, stops on SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ibfacts.venues import US_STOCKS
from ibsim.accounts.book import Book
from ibsim.clock import TWS_ZONE, Clock, ShiftedClock, SystemClock
from ibsim.config import GatewayConfig
from ibsim.fault_script import FaultScriptError, load_faults
from ibsim.market.calendars import sessions
from ibsim.server.gateway import serve

MAX_LOGINS = 16  # one gateway each: IB accounts rarely have more user names than that
MAX_SPEED = 1000.0  # beyond it a 5-s bar is due every 5 ms: more than a client can keep up with


class ScenarioError(ValueError):
    """A scenario file that cannot be read into a Book; the message is one sentence."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=port_number,
        default=4002,
        help="port (default 4002, paper; 0: any free port)",
    )
    parser.add_argument(
        "--logins",
        type=login_count,
        default=1,
        metavar="N",
        help="serve N IB logins, one gateway each on consecutive ports from --port, each with "
        "its own pacing and its own copy of the accounts (default 1)",
    )
    parser.add_argument(
        "--scenario",
        metavar="FILE.yml",
        help="the accounts behind the gateway, as a YAML scenario (see ibsim.accounts.book); "
        "default: one paper account with cash",
    )
    parser.add_argument(
        "--restart-refusal",
        type=float,
        metavar="SECONDS",
        default=GatewayConfig.restart_refusal,
        help="how long a restart refuses connections (default %(default)s)",
    )
    parser.add_argument(
        "--restart-at",
        type=_clock_time,
        metavar="HH:MM",
        help="restart every day at this time, as IB Gateway's auto-restart (default: never)",
    )
    parser.add_argument(
        "--restart-zone",
        default=GatewayConfig.restart_zone,
        help="the time zone of --restart-at (default %(default)s)",
    )
    parser.add_argument(
        "--replay",
        type=replay_start,
        metavar="DAY",
        help="replay a regular session of DAY (YYYY-MM-DD, from the 09:30 New York open, or "
        "'YYYY-MM-DD HH:MM' New York time) instead of following the wall clock, so ticks, 5-s "
        "bars and fills happen at any hour",
    )
    parser.add_argument(
        "--speed",
        type=replay_speed,
        metavar="N",
        help="with --replay: N times the real pace (default 1)",
    )
    parser.add_argument(
        "--account-update-interval",
        type=interval,
        metavar="SECONDS",
        default=GatewayConfig.account_update_interval,
        help="gateway seconds between refreshes of account updates and summaries, which also "
        "follow every fill (default %(default)s, IB's 3 minutes)",
    )
    parser.add_argument(
        "--pnl-interval",
        type=interval,
        metavar="SECONDS",
        default=GatewayConfig.pnl_interval,
        help="gateway seconds between pnl and pnlSingle updates (default %(default)s)",
    )
    parser.add_argument(
        "--faults",
        metavar="FILE.yml",
        help="a fault script to run from the start: a YAML list such as "
        "[{after: 30, fault: connectivity_lost}, {after: 35, fault: connectivity_restored}] "
        "(see ibsim.fault_script)",
    )


def port_number(text: str, lowest: int = 0) -> int:
    """An argparse type: a TCP port up to 65535 (larger numbers overflow the socket call); 0
    asks the system for a free one, which the gateway logs when it listens."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not lowest <= port <= 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port; use {lowest} to 65535")
    return port


def login_count(text: str) -> int:
    """An argparse type: how many logins (gateways) to serve."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_LOGINS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of logins; use 1 to {MAX_LOGINS}"
        )
    return int(text)


def _clock_time(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day like 23:45") from None


def interval(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0, e.g. 180")
    return seconds


def replay_start(text: str) -> datetime:
    """An argparse type: the moment a replay starts, a US stock trading day's open or a New York
    time on one (the session is what makes ticks, bars and fills happen)."""
    text = text.strip()
    try:
        moment = (
            datetime.strptime(text, "%Y-%m-%d %H:%M")
            if " " in text
            else datetime.combine(date.fromisoformat(text), time(9, 30))
        )
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a day; write YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (New York time)"
        ) from None
    table = sessions(US_STOCKS.name, rth=True)
    if moment.date() not in set(table.dates.astype(object)):
        raise argparse.ArgumentTypeError(
            f"{moment:%Y-%m-%d} ({moment:%A}) is not a trading day of the US exchanges; give a "
            "weekday they were open, e.g. 2024-07-10"
        )
    return moment.replace(tzinfo=TWS_ZONE)


def replay_speed(text: str) -> float:
    """An argparse type: how many times faster than real time a replay runs."""
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not 0 < speed <= MAX_SPEED:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a speed; give a number above 0 and at most {MAX_SPEED:g}, e.g. 10"
        )
    return speed


def _clock(args: argparse.Namespace) -> Clock:
    """The wall clock, or a replay of `--replay` at `--speed`."""
    if args.replay is None:
        return SystemClock()
    return ShiftedClock(args.replay, speed=args.speed or 1.0)


def load_scenario(path: str | Path, today: date | None = None) -> Book:
    """The Book a scenario file describes; ScenarioError (one sentence) if it cannot be read.

    `{today}` in the file becomes `today` (default: New York's date now), so a scenario's fills
    can be today's, the only ones IB reports."""
    path = Path(path)
    today = today or datetime.now(ZoneInfo("America/New_York")).date()
    try:
        text = path.read_text(encoding="utf-8").replace("{today}", today.isoformat())
        data = yaml.safe_load(text)
    except OSError as exc:
        raise ScenarioError(f"Cannot read the scenario {path} ({exc.strerror or exc}).") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ScenarioError(f"The scenario {path} is not valid YAML{at}.") from None
    if not isinstance(data, Mapping) or not data.get("accounts"):
        raise ScenarioError(
            f"The scenario {path} has no `accounts:` list (see ibsim.accounts.book)."
        )
    try:
        return Book.from_scenario(data)
    except KeyError as exc:
        raise ScenarioError(f"The scenario {path} lacks the field {exc} somewhere.") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ScenarioError(
            f"The scenario {path} does not fit ibsim.accounts.book's shape ({exc})."
        ) from None


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        book = load_scenario(args.scenario) if args.scenario else None
        faults = load_faults(args.faults) if args.faults else ()
        ZoneInfo(args.restart_zone)
    except (ScenarioError, FaultScriptError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except (ZoneInfoNotFoundError, ValueError):
        print(f"Unknown time zone {args.restart_zone!r} for --restart-zone.", file=sys.stderr)
        return 2
    if args.logins > 1 and args.port == 0:
        print(
            "--logins needs a fixed --port: the logins listen on consecutive ports.",
            file=sys.stderr,
        )
        return 2
    if args.port + args.logins - 1 > 65_535:
        print(f"--port {args.port} leaves no room for {args.logins} logins.", file=sys.stderr)
        return 2
    if args.speed is not None and args.replay is None:
        print("--speed needs --replay DAY: the wall clock runs at its own pace.", file=sys.stderr)
        return 2
    if args.replay is not None:
        logging.getLogger("ibsim").info(
            "replaying %s New York at %gx the real pace", f"{args.replay:%Y-%m-%d %H:%M}",
            args.speed or 1.0,
        )  # fmt: skip
    clock = _clock(args)
    configs = [
        GatewayConfig(
            host=args.host,
            port=args.port + login,
            book=load_scenario(args.scenario) if args.scenario and login else book,
            restart_refusal=args.restart_refusal,
            restart_at=args.restart_at,
            restart_zone=args.restart_zone,
            account_update_interval=args.account_update_interval,
            pnl_interval=args.pnl_interval,
            faults=faults,
            clock=clock,
        )
        for login in range(args.logins)
    ]

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(*(serve(config, stop) for config in configs))

    try:
        asyncio.run(main())
    except OSError as exc:
        ports = f"{args.port}" if args.logins == 1 else f"{args.port}-{args.port + args.logins - 1}"
        print(
            f"Cannot listen on {args.host}:{ports} ({exc.strerror or exc}): stop whatever "
            "holds the port or choose another with --port.",
            file=sys.stderr,
        )
        return 2
    logging.getLogger("ibsim").info("embedded IB Gateway stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ibsim", description="The embedded IB Gateway.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
