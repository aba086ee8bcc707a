"""Streaming market data: reqMktData ticks, tick-by-tick, and the pump that sends them.

Every subscription belongs to its client session (`ClientSession.subscriptions`) and ends with
it. One pump task per session wakes every `config.stream_interval` real seconds, reads the
gateway's clock and brings each subscription up to that second: it sends what is new, or, while
IB's link is down (1100) or the session is stalled, lets it pass unsent, so a gap stays a gap.
Prices come from ibsim.quotes, the market the historical bars and the order fills read too.
Real-time bars: ibsim.realtime_bars. Limits: IB's market data pages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from ibsim import errors
from ibsim.bars import bars_between
from ibsim.dispatch import handles
from ibsim.historical import resolve
from ibsim.instruments import Instrument
from ibsim.quotes import Quote, quote_at
from ibsim.requests import FieldReader
from ibsim.sessions import sessions

if TYPE_CHECKING:
    from ibsim.server import Gateway
    from ibsim.session import ClientSession

log = logging.getLogger("ibsim")
TICK_VERSION = 6  # the version field of tickPrice, tickSize and tickString (clients skip it)
SNAPSHOT_PERMISSIONS = 3
MAX_CATCH_UP = 300  # gateway seconds of tick-by-tick a late pump sends at most (a clock jump)
# Price ticks and the size ticks that go with them: bid 1/0, ask 2/3, last 4/5.
PAIRED = {1: 0, 2: 3, 4: 5}
DAY_PRICES = (6, 7, 9, 14)  # high, low, previous close, open
VOLUME, LAST_TIMESTAMP = 8, 45
# reqMarketDataType 3 and 4: the delayed twin of every tick type the gateway sends.
DELAYED = {1: 66, 2: 67, 4: 68, 0: 69, 3: 70, 5: 71, 6: 72, 7: 73, 8: 74, 9: 75, 14: 76, 45: 88}
TICK_BY_TICK = {"Last": 1, "AllLast": 2, "BidAsk": 3, "MidPoint": 4}  # case-sensitive, as IB


class Subscription(Protocol):
    """A streaming request of one client, brought up to the gateway's clock by the pump."""

    req_id: int
    takes_line: ClassVar[bool]  # holds one of the login's market data lines

    def advance(self, session: ClientSession, now: int, live: bool) -> None:
        """Catch up to gateway second `now`: send what is new if `live`, else let it pass."""


# ------------------------------------------------------------------- the pump
def start(session: ClientSession, sub: Subscription) -> None:
    """Keep `sub` streaming (its first answer is sent) and make sure the session's pump runs."""
    session.subscriptions[sub.req_id] = sub
    if session.pump is None or session.pump.done():
        session.pump = session.spawn(_pump(session))


async def _pump(session: ClientSession) -> None:
    while True:
        await asyncio.sleep(session.gateway.config.stream_interval)
        catch_up(session)


def is_live(session: ClientSession) -> bool:
    """Whether streamed data reaches this client now: IB's link is up and it is not stalled."""
    return session.gateway.link_up and not session.stalled


STREAM_FAILED = errors.realtime_query("the gateway failed to compute the data (see its log)")


def catch_up(session: ClientSession) -> None:
    """Bring every subscription of `session` to the gateway's current second.

    Faults call this just before they change the link or stall a session, so what came due
    before the change is sent (or lost) by the state that held when it came due."""
    if not session.subscriptions:
        return
    now = int(session.now().timestamp())
    live = is_live(session)
    for sub in list(session.subscriptions.values()):
        try:
            sub.advance(session, now, live)
        except Exception:  # a gateway bug: end this subscription, keep the others
            log.exception("streaming request %s failed", sub.req_id)
            session.subscriptions.pop(sub.req_id, None)
            session.send_error(sub.req_id, STREAM_FAILED)


def check_new(session: ClientSession, req_id: int, takes_line: bool) -> None:
    """IB's checks for a new subscription: a fresh ticker id and, if it needs one, a free line."""
    if req_id in session.subscriptions:
        raise errors.DUPLICATE_TICKER
    gateway = session.gateway
    if takes_line and _count(gateway, lambda s: s.takes_line) >= gateway.config.market_data_lines:
        raise errors.MAX_TICKERS


def _count(gateway: Gateway, which: Callable[[Subscription], bool]) -> int:
    """Subscriptions of every client of this login (IB counts lines per login)."""
    return sum(
        1 for client in gateway.clients.values() for s in client.subscriptions.values() if which(s)
    )


def cancel(session: ClientSession, req_id: int, kind: type) -> None:
    """End the `kind` subscription `req_id`; 300 if this client has none by that id."""
    if not isinstance(session.subscriptions.get(req_id), kind):
        raise errors.no_ticker(req_id)
    del session.subscriptions[req_id]


# ------------------------------------------------------------------- the market at a second
@dataclass(frozen=True)
class Day:
    """The session so far (prices in integer units) and the previous session's close."""

    open: int
    high: int
    low: int
    volume: int
    previous_close: int | None


quote = lru_cache(maxsize=8192)(quote_at)


@lru_cache(maxsize=4096)
def market_at(inst: Instrument, at: int) -> tuple[Quote, Day]:
    """The quote in second `at` and the day it belongs to (full hours, as ibsim.quotes)."""
    q = quote(inst, at)
    table = sessions(inst.venue, False)
    i = int(np.searchsorted(table.closes, q.at, side="right"))  # the session holding q.at
    today = bars_between(inst, _source(inst), False, "day", int(table.opens[i]), q.at + 1).values
    previous = _session_close(inst, i - 1) if i > 0 else None
    if not len(today):
        return q, Day(0, 0, 0, 0, previous)
    day = Day(int(today.open[0]), int(today.high[0]), int(today.low[0]), int(today.volume[0]),
              previous)  # fmt: skip
    return q, day


@lru_cache(maxsize=4096)
def _session_close(inst: Instrument, index: int) -> int | None:
    table = sessions(inst.venue, False)
    opens, closes = int(table.opens[index]), int(table.closes[index])
    bars = bars_between(inst, _source(inst), False, "day", opens, closes).values
    return int(bars.close[-1]) if len(bars) else None


def _source(inst: Instrument) -> str:
    """Trades where the instrument has them; the midpoint for indices and FX."""
    return "TRADES" if inst.volume_per_minute else "MIDPOINT"


def fixed(units: int, decimals: int) -> str:
    """Integer price units as exact decimal text."""
    if decimals == 0:
        return str(units)
    whole, part = divmod(units, 10**decimals)
    return f"{whole}.{part:0{decimals}d}"


def tick_values(inst: Instrument, q: Quote, day: Day, before: dict[int, str]) -> dict[int, str]:
    """The default ticks (live tick ids) at quote `q`. Indices have no bid or ask, FX no last;
    the last size and time hold the last trade's while a second has none."""
    d = inst.decimals
    values: dict[int, str] = {}
    if inst.sec_type != "IND":
        values |= {1: f"{q.bid:.{d}f}", 0: str(q.bid_size), 2: f"{q.ask:.{d}f}", 3: str(q.ask_size)}
    if inst.sec_type != "CASH":
        traded = q.last_size > 0
        values[4] = f"{q.last:.{d}f}"
        values[5] = str(q.last_size) if traded or 5 not in before else before[5]
        if inst.volume_per_minute:
            stamp = str(q.at) if traded or LAST_TIMESTAMP not in before else before[LAST_TIMESTAMP]
            values[LAST_TIMESTAMP] = stamp
            values[VOLUME] = str(day.volume)
    if day.high:
        values |= {6: fixed(day.high, d), 7: fixed(day.low, d), 14: fixed(day.open, d)}
    if day.previous_close is not None:
        values[9] = fixed(day.previous_close, d)
    return values


def tick_messages(
    req_id: int, new: dict[int, str], old: dict[int, str], delayed: bool
) -> Iterator[tuple]:
    """tickPrice (1), tickSize (2) and tickString (46) for the ticks that changed: a price with
    its size, a size alone when only it moved."""

    def tick(t: int) -> int:
        return DELAYED[t] if delayed else t

    for price, size in PAIRED.items():
        if price not in new:
            continue
        if new[price] != old.get(price):
            yield 1, TICK_VERSION, req_id, tick(price), new[price], new[size], 0
        elif new[size] != old.get(size):
            yield 2, TICK_VERSION, req_id, tick(size), new[size]
    for price in DAY_PRICES:
        if price in new and new[price] != old.get(price):
            yield 1, TICK_VERSION, req_id, tick(price), new[price], 0, 0
    if VOLUME in new and new[VOLUME] != old.get(VOLUME):
        yield 2, TICK_VERSION, req_id, tick(VOLUME), new[VOLUME]
    if LAST_TIMESTAMP in new and new[LAST_TIMESTAMP] != old.get(LAST_TIMESTAMP):
        yield 46, TICK_VERSION, req_id, tick(LAST_TIMESTAMP), new[LAST_TIMESTAMP]


# ------------------------------------------------------------------- reqMktData
@dataclass(eq=False)
class MarketData:
    """One reqMktData: the default ticks, each sent again when it changes."""

    req_id: int
    inst: Instrument
    sent: dict[int, str] = field(default_factory=dict)  # live tick id -> value last sent
    data_type: int = 0  # the marketDataType (58) last reported
    takes_line: ClassVar[bool] = True

    def open(self, session: ClientSession, send_ticks: bool) -> None:
        """The first answer: tickReqParams, then (if `send_ticks`) the type and the ticks."""
        min_tick = fixed(self.inst.tick_units, self.inst.decimals)
        session.send(81, self.req_id, min_tick, "", SNAPSHOT_PERMISSIONS)
        if send_ticks:
            self.send_changes(session, int(session.now().timestamp()))

    def advance(self, session: ClientSession, now: int, live: bool) -> None:
        if live:  # ticks are state: after an outage the changes since the last send go out
            self.send_changes(session, now)

    def send_changes(self, session: ClientSession, now: int) -> None:
        requested = session.market_data_type
        delayed = requested >= 3
        at = now - session.gateway.config.delayed_data_lag if delayed else now
        q, day = market_at(self.inst, at)
        # Frozen data (2, 4) shows only while the market is closed; open, it is live (delayed).
        data_type = requested - 1 if requested in (2, 4) and q.open else requested
        if data_type != self.data_type:
            session.send(58, 1, self.req_id, data_type)
            self.data_type, self.sent = data_type, {}  # new tick ids: everything again
        values = tick_values(self.inst, q, day, self.sent)
        for message in tick_messages(self.req_id, values, self.sent, delayed):
            session.send(*message)
        self.sent = values


@handles(1)
def req_mkt_data(session: ClientSession, msg: FieldReader) -> None:
    msg.skip()  # version
    req_id = msg.request_id()
    query = msg.contract()
    if query.sec_type == "BAG":
        msg.skip(4 * msg.int())  # legs: conId, ratio, action, exchange
    if msg.bool():  # delta-neutral contract: conId, delta, price
        msg.skip(3)
    msg.str()  # genericTickList: the gateway sends the default ticks only
    snapshot, regulatory = msg.bool(), msg.bool()
    msg.str()  # mktDataOptions
    inst = resolve(session, query)
    sub = MarketData(req_id, inst)
    if snapshot or regulatory:  # one picture, then tickSnapshotEnd; it holds no line
        sub.open(session, send_ticks=True)
        session.send(57, 1, req_id)
        return
    check_new(session, req_id, takes_line=True)
    sub.open(session, send_ticks=is_live(session))
    start(session, sub)


@handles(2)
def cancel_mkt_data(session: ClientSession, msg: FieldReader) -> None:
    msg.skip()
    cancel(session, msg.request_id(), MarketData)


@handles(59)
def req_market_data_type(session: ClientSession, msg: FieldReader) -> None:
    """Applies to this client's streams from now on, as in TWS (and is forgotten with it)."""
    msg.skip()
    data_type = msg.int()
    if data_type not in (1, 2, 3, 4):
        raise errors.bad_request(f"market data type {data_type} is not 1, 2, 3 or 4")
    session.market_data_type = data_type


# ------------------------------------------------------------------- tick-by-tick
@dataclass(eq=False)
class TickByTick:
    """One reqTickByTickData: a tick for each gateway second in which its kind changed."""

    req_id: int
    inst: Instrument
    kind: int  # 1 Last, 2 AllLast, 3 BidAsk, 4 MidPoint
    done: int  # the last gateway second handled
    previous: tuple | None = None  # the last BidAsk or MidPoint sent
    takes_line: ClassVar[bool] = False  # tick-by-tick has its own quota

    def advance(self, session: ClientSession, now: int, live: bool) -> None:
        if live:
            for at in range(max(self.done + 1, now - MAX_CATCH_UP + 1), now + 1):
                fields = self._tick(at)
                if fields is not None:
                    session.send(99, self.req_id, self.kind, at, *fields)
        self.done = max(self.done, now)

    def _tick(self, at: int) -> tuple | None:
        q = quote(self.inst, at)
        if not q.open:
            return None
        d = self.inst.decimals
        if self.kind in (1, 2):  # price, size, attribute mask, exchange, special conditions
            if not q.last_size:
                return None
            exchange = self.inst.primary_exchange or self.inst.exchange
            return f"{q.last:.{d}f}", q.last_size, 0, exchange, ""
        if self.kind == 3:  # bid, ask, bid size, ask size, attribute mask
            now: tuple = (f"{q.bid:.{d}f}", f"{q.ask:.{d}f}", q.bid_size, q.ask_size, 0)
        else:
            now = (f"{round(q.mid, d + 1):.{d + 1}f}",)
        if now == self.previous:
            return None
        self.previous = now
        return now


def tick_by_tick_lines(gateway: Gateway) -> int:
    lines = gateway.config.tick_by_tick_lines
    return max(1, gateway.config.market_data_lines * 5 // 100) if lines is None else lines


@handles(97)
def req_tick_by_tick(session: ClientSession, msg: FieldReader) -> None:
    req_id = msg.request_id()
    query = msg.contract()
    kind_name = msg.str().strip()
    msg.int()  # numberOfTicks: no history first
    msg.bool()  # ignoreSize
    if kind_name not in TICK_BY_TICK:
        raise errors.invalid_request(
            f"Invalid tick type {kind_name!r}: use Last, AllLast, BidAsk or MidPoint."
        )
    inst = resolve(session, query)
    check_new(session, req_id, takes_line=False)
    if _count(session.gateway, lambda s: isinstance(s, TickByTick)) >= tick_by_tick_lines(
        session.gateway
    ):
        raise errors.MAX_TICK_BY_TICK
    now = int(session.now().timestamp())
    sub = TickByTick(req_id, inst, TICK_BY_TICK[kind_name], done=now - 1)
    sub.advance(session, now, is_live(session))
    start(session, sub)


@handles(98)
def cancel_tick_by_tick(session: ClientSession, msg: FieldReader) -> None:
    cancel(session, msg.request_id(), TickByTick)
