"""`ibw live`: run the live service in the foreground until Ctrl-C or SIGTERM.

It logs every connect, fault and resubscription, and ends with a summary of what it lived
through and what landed. Supervise it with systemd or a container restart policy: it is made
to be killed and started again (the journal and the lake carry everything over). One runs per
home: a second exits 1 at once with a sentence naming the first one's pid (live.guard). With
several IB logins ($IBW_GATEWAYS) it trades on the trading login and streams on a data login.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from engines.gateways_file import load_logins
from ibkr.errors import one_sentence
from ibkr.gateways import live_logins
from live.config import DEFAULT_CONFIG, LiveConfig
from live.service import LiveService
from warehouse.layout import home as default_home


def add_live_command(commands: argparse._SubParsersAction) -> None:
    """Register `live` on the `ibw` subcommands."""
    command = commands.add_parser("live", help="stream ticks and 5-s bars and run orders")
    command.add_argument("--home", default=str(default_home()), help="warehouse ($IBW_HOME)")
    command.add_argument(
        "--config", default=str(DEFAULT_CONFIG), help="streams and limits (default %(default)s)"
    )
    command.add_argument(
        "--trading-login",
        help="the IB login (of $IBW_GATEWAYS) to trade on (default: the one login that trades)",
    )
    command.add_argument(
        "--data-login",
        help="the IB login to stream on (default: the trading login if it serves data)",
    )
    command.add_argument(
        "--for", dest="seconds", type=float, help="stop by itself after this many seconds"
    )
    command.set_defaults(run=run_live)


def run_live(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    try:
        config = LiveConfig.load(Path(args.config))
        trading, data = live_logins(load_logins(), args.trading_login, args.data_login)
        service = LiveService(
            trading.settings(),
            Path(args.home).resolve(),
            config,
            data=None if data is trading else data.settings(),
        )
        counters = asyncio.run(_serve(service, args.seconds))
    except Exception as exc:  # one sentence, whatever failed
        console.print(f"[red]ibw live:[/red] {one_sentence(exc)}", soft_wrap=True)
        return 1
    health = service.last_health
    totals = health.get("totals", {})
    orders = health.get("orders", {})
    console.print(
        f"ibw live: {counters.connects} connect(s), {counters.link_lost} outage(s) of IB's link, "
        f"{counters.stalls} stall(s); {totals.get('ticks', 0)} ticks and "
        f"{totals.get('bars', 0)} 5-s bars written ({totals.get('refilled', 0)} refilled); "
        f"{sum(orders.get('intents', {}).values())} order intent(s), "
        f"{orders.get('fills', 0)} fill(s), {orders.get('differences', 0)} difference(s).",
        soft_wrap=True,
    )
    return 0


async def _serve(service: LiveService, seconds: float | None):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if seconds is not None:
        loop.call_later(seconds, stop.set)
    return await service.run(stop)
