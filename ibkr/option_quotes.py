"""A picture of many options' markets through ib_async, never holding more market-data lines
than allowed: bid, ask, last, sizes, volume, open interest, and IB's option computations.

Why streaming requests and not snapshots: IB's snapshot (`snapshot=True`) takes default ticks
only, so no open interest or option volume (generic ticks 101 and 100), and holds its line until
`tickSnapshotEnd`, 11 s later. A streaming request with generic ticks "100,101" has the whole
picture within its first updates and frees its line at once when cancelled, so the chain goes
through at the pace of IB's 50 messages a second (a request and a cancel per option), not 11 s
per hundred options. Each option's request ends when its picture is complete or after `wait`
seconds (an option nobody quotes sends no bid); what did not come stays None.

IB's tick types (its "Available Tick Types" page): 27/28 open interest and 29/30 volume of calls
and puts, which for an option contract carry the option's own figures (ib_async names them
call*/put*); tickOptionComputation 10-13 are the bid, ask, last and model computations.
May import ib_async, `ibkr` and the standard library.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ib_async import Contract, OptionComputation, Ticker

from ibkr import errors
from ibkr.client import IBClient

GENERIC_TICKS = "100,101"  # option volume, option open interest
MESSAGES_PER_SECOND = 50  # IB's limit on messages from a client (its "Pacing" notes)
DEFAULT_WAIT = 5.0  # seconds an option's picture may take before it is stored as it is


@dataclass
class QuoteRun:
    """The rows of one run and what it cost: lines held at once at most, and seconds."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lines_peak: int = 0
    seconds: float = 0.0
    requests: int = 0
    incomplete: int = 0  # options stored with part of their picture missing


def lower_bound_seconds(options: int, lines: int, first_picture: float) -> float:
    """The least time IB's rules allow for `options` pictures: a request and a cancel each, no
    more than 50 messages in any second (so the last of 2N goes out floor((2N - 1) / 50) s after
    the first), and no more than `lines` requests open, each for at least `first_picture`."""
    messages = (2 * options - 1) // MESSAGES_PER_SECOND
    return max(messages, math.ceil(options / lines) * first_picture) + first_picture


async def take_quotes(
    client: IBClient, contracts: Sequence[Contract], lines: int, wait: float = DEFAULT_WAIT
) -> QuoteRun:
    """One picture of each qualified option contract, at most `lines` requests open at once."""
    if lines < 1:
        raise errors.InvalidRequest(
            "no market-data lines are left for the option quotes",
            "set IBW_OPTION_QUOTES_LINES to 1 or more",
        )
    run = QuoteRun()
    gate = asyncio.Semaphore(lines)
    pace = _Pace(client.ib.client.MaxRequests, client.ib.client.RequestsInterval)
    open_now = 0
    failures: dict[int, str] = {}  # id(contract) -> IB's sentence

    def on_error(req_id: int, code: int, text: str, about: object) -> None:
        if isinstance(about, Contract) and not errors.is_informational(code):
            failures[id(about)] = str(errors.from_ib(code, text, errors.describe_contract(about)))

    async def one(contract: Contract) -> None:
        nonlocal open_now
        async with gate:
            await pace.take(2)  # the request and its cancel
            open_now += 1
            run.lines_peak = max(run.lines_peak, open_now)
            run.requests += 2
            ticker = client.ib.reqMktData(contract, GENERIC_TICKS, False, False)
            try:
                async with asyncio.timeout(wait):
                    while not complete(ticker) and id(contract) not in failures:
                        await ticker.updateEvent
            except TimeoutError:
                pass
            finally:
                client.ib.cancelMktData(contract)
                open_now -= 1
        if id(contract) in failures:
            run.errors.append(failures[id(contract)])
            return
        row = picture(ticker)
        run.incomplete += not complete(ticker)
        run.rows.append(row)

    started = time.monotonic()
    client.ib.errorEvent += on_error
    try:
        await asyncio.gather(*(one(c) for c in contracts))
    finally:
        client.ib.errorEvent -= on_error
    client.requests += run.requests
    # ib_async queues messages beyond its own 45 a second, in order: the gateway has every
    # cancel (its lines are free) once a request sent after them is answered.
    await client.now()
    run.seconds = time.monotonic() - started
    return run


class _Pace:
    """ib_async's own throttle (at most `limit` messages in any `interval` seconds), kept here
    before a request is made: ib_async queues what goes beyond it, and an option's `wait` would
    run out in that queue before its request left."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit, self.interval = limit, interval
        self.sent: deque[float] = deque()

    async def take(self, messages: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self.sent and now - self.sent[0] > self.interval:
                self.sent.popleft()
            if not self.limit or len(self.sent) + messages <= self.limit:
                self.sent.extend([now] * messages)
                return
            await asyncio.sleep(self.sent[0] + self.interval - now)


def complete(ticker: Ticker) -> bool:
    """Bid, ask, the model's computation and the open interest have all come."""
    return (
        _number(ticker.bid) is not None
        and _number(ticker.ask) is not None
        and ticker.modelGreeks is not None
        and _open_interest(ticker) is not None
    )


def picture(ticker: Ticker) -> dict[str, Any]:
    """The row of one option: its market and IB's computations, as taken."""
    c = ticker.contract
    model = ticker.modelGreeks or OptionComputation(
        0, None, None, None, None, None, None, None, None
    )
    taken = ticker.time or datetime.now(UTC)
    return {
        "con_id": c.conId,
        "bid": _number(ticker.bid),
        "ask": _number(ticker.ask),
        "last": _number(ticker.last),
        "bid_size": _number(ticker.bidSize),
        "ask_size": _number(ticker.askSize),
        "volume": _number(ticker.callVolume if c.right == "C" else ticker.putVolume),
        "open_interest": _open_interest(ticker),
        "implied_vol": _number(model.impliedVol),
        "delta": _number(model.delta),
        "gamma": _number(model.gamma),
        "vega": _number(model.vega),
        "theta": _number(model.theta),
        "model_price": _number(model.optPrice),
        "pv_dividend": _number(model.pvDividend),
        "underlying_price": _number(model.undPrice),
        "bid_iv": _iv(ticker.bidGreeks),
        "ask_iv": _iv(ticker.askGreeks),
        "taken_at": taken.astimezone(UTC),
    }


def _open_interest(ticker: Ticker) -> float | None:
    right = ticker.contract.right if ticker.contract else ""
    return _number(ticker.callOpenInterest if right == "C" else ticker.putOpenInterest)


def _iv(computation: OptionComputation | None) -> float | None:
    return _number(computation.impliedVol) if computation is not None else None


def _number(value: float | None) -> float | None:
    """None for what IB has not sent (ib_async's nan) or sent as unknown (-1)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == -1:
        return None
    return float(value)
