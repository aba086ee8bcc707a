"""The gateway's CPU cost per served bar, as a ratio to ib_async's cost to decode that bar.

One large request, a year of one-minute bars (AAPL TRADES, useRTH=0, "1 Y", "1 min", ending
2024-07-10 00:00 UTC), for formatDate 2 (epoch seconds) and formatDate 1 (local time and zone):

* gateway: the work the gateway does on its executor for the request, ``historical.compute``
  (bars from the synthetic market) and ``historical.encode`` (the msg 17 payload), on a
  ``BarRequest`` that ``historical.parse_bar_request`` read from the msg 20 fields ib_async sends;
* client: what ib_async does with that payload: ``bytes.decode`` and ``split("\\0")`` as in
  ``Client._onSocketHasData``, then ``Decoder(wrapper, 178).interpret(fields)``, whose
  ``historicalData`` builds a ``BarData`` per bar (floats, ``parseIBDatetime``) and appends it to
  the wrapper's result list for the reqId.

Both sides run in this process, on the same payload, timed with ``time.process_time`` (CPU of
every thread, so polars' worker threads count) and ``time.perf_counter`` (wall). Each figure is
the best of several runs after a warm-up; the gateway's first, cold request is reported apart.
The goal is a ratio gateway/decode of at most 0.5: serving a bar costs at most half of what the
fastest client spends reading it. Run it with::

    uv run python bench/gateway_vs_decode.py [--gateway-runs 5] [--decode-runs 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ib_async import IB
from ib_async.decoder import Decoder

from ibsim.clock import ManualClock
from ibsim.config import GatewayConfig
from ibsim.handlers import historical
from ibsim.handlers.fields import FieldReader
from ibsim.server import Gateway
from ibsim.server import framing as wire

NOW = datetime(2024, 7, 10, 15, 0, tzinfo=UTC)  # the tests' pinned clock
END = "20240710-00:00:00"  # the close of 07-09's extended session (20:00 New York)
REQ_ID = 1
SERVER_VERSION = 178
GOAL = 0.5  # gateway CPU per bar / ib_async decode CPU per bar


def request_fields(format_date: int) -> list[str]:
    """msg 20 as ib_async 2.1.0 encodes reqHistoricalData(AAPL, END, "1 Y", "1 min", ...)."""
    contract = ["0", "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", ""]
    return ["20", str(REQ_ID), *contract, "0", END, "1 min", "1 Y", "0", "TRADES",
            str(format_date), "0", ""]  # fmt: skip


def bar_request(gateway: Gateway, format_date: int) -> historical.BarRequest:
    """The BarRequest the gateway's handler builds, through its own parser and checks."""
    msg = FieldReader(request_fields(format_date))
    msg.request_id()
    return historical.parse_bar_request(gateway.state, msg)


def serve(req: historical.BarRequest) -> bytes:
    """The gateway's executor work for one request: bars, then the msg 17 payload."""
    bars = historical.compute(req, NOW)
    return historical.encode(REQ_ID, req, bars)


def make_decoder() -> tuple[Decoder, Any]:
    """ib_async's decoder on the wrapper of an unconnected IB, as a connected client has."""
    wrapper = IB().wrapper
    return Decoder(wrapper, SERVER_VERSION), wrapper


def decode(decoder: Decoder, wrapper: Any, payload: bytes) -> list:
    """What ib_async does with one msg 17 payload; returns the BarData it collected."""
    wrapper._results[REQ_ID] = []  # what IB.reqHistoricalData's startReq registers
    fields = payload.decode(errors="backslashreplace").split("\0")
    fields.pop()  # the empty string after the final NUL
    decoder.interpret(fields)
    return wrapper._results.pop(REQ_ID)


@dataclass
class Timing:
    cpu: float  # seconds, best run
    wall: float  # seconds, best run


def best_of(runs: int, fn: Callable[[], object]) -> tuple[Timing, object]:
    """The fastest of `runs` calls by CPU time (and, separately, by wall time)."""
    cpu, wall, result = float("inf"), float("inf"), None
    for _ in range(runs):
        result = None  # free the previous run's output before timing the next
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        c1, w1 = time.process_time(), time.perf_counter()
        cpu, wall = min(cpu, c1 - c0), min(wall, w1 - w0)
    return Timing(cpu, wall), result


def split_gateway(req: historical.BarRequest, runs: int) -> tuple[float, float]:
    """Best CPU seconds of compute and of encode alone (the breakdown of the gateway side)."""
    compute, bars = best_of(runs, lambda: historical.compute(req, NOW))
    encode, _ = best_of(runs, lambda: historical.encode(REQ_ID, req, bars))
    return compute.cpu, encode.cpu


def profile_gateway(req: historical.BarRequest, top: int = 15) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(serve, req)
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
    stats.print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--gateway-runs", type=int, default=5)
    parser.add_argument("--decode-runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile the gateway side")
    args = parser.parse_args()

    gateway = Gateway(GatewayConfig(port=0, clock=ManualClock(NOW)))
    cold = best_of(1, lambda: serve(bar_request(gateway, 2)))[0]
    print(f"request: AAPL TRADES useRTH=0, 1 Y of 1 min bars ending {END} UTC")
    print(f"gateway's first (cold) request: {cold.cpu:.2f} s CPU, session tables included\n")
    print(
        f"{'formatDate':>10} {'bars':>8} {'payload MB':>10} {'gateway µs/bar':>14} "
        f"{'compute':>8} {'encode':>7} {'decode µs/bar':>13} {'ratio':>6} {'wall ratio':>10}"
    )
    decoder, wrapper = make_decoder()
    ratios: list[float] = []
    for format_date in (2, 1):
        req = bar_request(gateway, format_date)
        serve(req)  # warm-up
        gw, payload = best_of(args.gateway_runs, lambda req=req: serve(req))
        assert isinstance(payload, bytes)
        compute, encode = split_gateway(req, args.gateway_runs)
        client, bars = best_of(args.decode_runs, lambda p=payload: decode(decoder, wrapper, p))
        count = int(payload.split(b"\0", 5)[4])
        assert isinstance(bars, list) and len(bars) == count, "ib_async did not decode every bar"
        per = 1e6 / count
        oversize = " (over ibapi's 0xFFFFFF frame limit)" if len(payload) > wire.MAX_FRAME else ""
        print(
            f"{format_date:>10} {count:>8} {len(payload) / 1e6:>10.1f} {gw.cpu * per:>14.2f} "
            f"{compute * per:>8.2f} {encode * per:>7.2f} {client.cpu * per:>13.2f} "
            f"{gw.cpu / client.cpu:>6.2f} {gw.wall / client.wall:>10.2f}{oversize}"
        )
        ratios.append(gw.cpu / client.cpu)
        if args.profile:
            profile_gateway(req)
    verdict = "met" if max(ratios) <= GOAL else "NOT met"
    print(f"\ngoal gateway/decode <= {GOAL} (CPU): {verdict}")
    print("compute and encode are each the best of their own runs, so they need not add up.")


if __name__ == "__main__":
    main()
