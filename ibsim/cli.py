"""Running the gateway in the foreground: logs a line per client, stops on SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from ibsim.config import GatewayConfig
from ibsim.server import serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4002, help="port (default 4002, paper)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = GatewayConfig(host=args.host, port=args.port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    try:
        asyncio.run(main())
    except OSError as exc:
        print(
            f"Cannot listen on {args.host}:{args.port} ({exc.strerror or exc}): stop whatever "
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
