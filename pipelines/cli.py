"""The `ibw` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from ibsim.config import GatewayConfig
from ibsim.server import serve


def _gateway(args: argparse.Namespace) -> int:
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
        print(f"ibw gateway: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
              "pick a free port with --port.", file=sys.stderr)  # fmt: skip
        return 2
    logging.getLogger("ibsim").info("embedded IB Gateway stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ibw", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gw = commands.add_parser("gateway", help="run the embedded IB Gateway in the foreground")
    gw.add_argument("--host", default="127.0.0.1")
    gw.add_argument("--port", type=int, default=4002)
    gw.set_defaults(run=_gateway)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
