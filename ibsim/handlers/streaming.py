"""Streaming market data: reqMktData ticks, tick-by-tick, and the pump that sends them.

Every subscription belongs to its client connection (`Client.subscriptions`) and ends with
it. One pump task per connection wakes every `config.stream_interval` real seconds, reads the
gateway's clock and brings each subscription up to that second: it sends what is new, or, while
IB's link is down (1100) or the connection is stalled, lets it pass unsent, so a gap stays a
gap. Prices come from ibsim.market.quotes, the market the historical bars and the order fills
read too. Real-time bars: ibsim.handlers.realtime_bars; the account subscriptions (account
updates, summary, P&L: ibsim.handlers.portfolio) ride the same pump. Limits: IB's market data
pages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

import numpy as np

from ibsim.config import GatewayConfig
from ibsim.handlers import option_analytics as analytics
from ibsim.handlers.client import Client, Subscription
from ibsim.handlers.fields import FieldReader
from ibsim.handlers.historical import resolve
from ibsim.market import errors
from ibsim.market.bars import bars_between
from ibsim.market.calendars import sessions
from ibsim.market.instruments import Instrument
from ibsim.market.options import OPTION_TYPES
from ibsim.market.quotes import Quote, quote_at

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


# ------------------------------------------------------------------- the pump
def start(client: Client, sub: Subscription) -> None:
    """Keep `sub` streaming (its first answer is sent) and make sure the client's pump runs."""
    client.subscriptions[sub.req_id] = sub
    if client.pump is None or client.pump.done():
        client.pump = client.spawn(_pump(client))


async def _pump(client: Client) -> None:
    while True:
        await asyncio.sleep(client.state.config.stream_interval)
        catch_up(client)


def is_live(client: Client) -> bool:
    """Whether streamed data reaches this client now: IB's link is up and it is not stalled."""
    return client.state.link_up and not client.stalled


STREAM_FAILED = errors.realtime_query("the gateway failed to compute the data (see its log)")


def catch_up(client: Client) -> None:
    """Bring every subscription of `client` to the gateway's current second.

    Faults call this just before they change the link or stall a client, so what came due
    before the change is sent (or lost) by the state that held when it came due."""
    if not client.subscriptions:
        return
    now = int(client.now().timestamp())
    live = is_live(client)
    for sub in list(client.subscriptions.values()):
        try:
            sub.advance(client, now, live)
        except Exception:  # a gateway bug: end this subscription, keep the others
            log.exception("streaming request %s failed", sub.req_id)
            client.subscriptions.pop(sub.req_id, None)
            client.send_error(sub.req_id, STREAM_FAILED)


def check_new(client: Client, req_id: int, takes_line: bool) -> None:
    """IB's checks for a new subscription: a fresh ticker id and, if it needs one, a free line."""
    if req_id in client.subscriptions:
        raise errors.DUPLICATE_TICKER
    lines = client.state.config.market_data_lines
    if takes_line and _count(client, lambda s: s.takes_line) >= lines:
        raise errors.MAX_TICKERS


def _count(client: Client, which: Callable[[Subscription], bool]) -> int:
    """Subscriptions of every client of this login (IB counts lines per login)."""
    return sum(1 for peer in client.peers() for s in peer.subscriptions.values() if which(s))


def cancel(client: Client, req_id: int, kind: type) -> None:
    """End the `kind` subscription `req_id`; 300 if this client has none by that id."""
    if not isinstance(client.subscriptions.get(req_id), kind):
        raise errors.no_ticker(req_id)
    del client.subscriptions[req_id]


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
    """The quote in second `at` and the day it belongs to (full hours, as ibsim.market.quotes)."""
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
    generic: frozenset[int] = frozenset()  # the genericTickList asked for
    computed: dict[int, tuple] = field(default_factory=dict)  # option computations last sent
    generic_sent: dict[int, str] = field(default_factory=dict)
    takes_line: ClassVar[bool] = True

    def open(self, client: Client, send_ticks: bool) -> None:
        """The first answer: tickReqParams, then (if `send_ticks`) the type and the ticks."""
        min_tick = fixed(self.inst.tick_units, self.inst.decimals)
        client.send(81, self.req_id, min_tick, "", SNAPSHOT_PERMISSIONS)
        if send_ticks:
            self.send_changes(client, int(client.now().timestamp()))

    def advance(self, client: Client, now: int, live: bool) -> None:
        if live:  # ticks are state: after an outage the changes since the last send go out
            self.send_changes(client, now)

    def send_changes(self, client: Client, now: int) -> None:
        requested = client.market_data_type
        delayed = requested >= 3
        at = now - client.state.config.delayed_data_lag if delayed else now
        q, day = market_at(self.inst, at)
        # Frozen data (2, 4) shows only while the market is closed; open, it is live (delayed).
        data_type = requested - 1 if requested in (2, 4) and q.open else requested
        if data_type != self.data_type:
            client.send(58, 1, self.req_id, data_type)
            self.data_type, self.sent = data_type, {}  # new tick ids: everything again
            self.computed, self.generic_sent = {}, {}
        values = tick_values(self.inst, q, day, self.sent)
        for message in tick_messages(self.req_id, values, self.sent, delayed):
            client.send(*message)
        self.sent = values
        if self.inst.sec_type in OPTION_TYPES:
            computed = analytics.computations(self.inst, q)
            for message in analytics.computation_messages(
                self.req_id, computed, self.computed, delayed
            ):
                client.send(*message)
            self.computed = computed
        extra = analytics.generic_values(self.inst, self.generic, client.now())
        for message in analytics.generic_messages(self.req_id, extra, self.generic_sent):
            client.send(*message)
        self.generic_sent = extra


def req_mkt_data(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    req_id = msg.request_id()
    query = msg.contract()
    if query.sec_type == "BAG":
        msg.skip(4 * msg.int())  # legs: conId, ratio, action, exchange
    if msg.bool():  # delta-neutral contract: conId, delta, price
        msg.skip(3)
    generic = frozenset(int(t) for t in msg.str().split(",") if t.strip().isdigit())
    snapshot, regulatory = msg.bool(), msg.bool()
    msg.str()  # mktDataOptions
    inst = resolve(client.state.catalog, query)
    sub = MarketData(req_id, inst, generic=frozenset() if snapshot or regulatory else generic)
    if snapshot or regulatory:  # default ticks only, then tickSnapshotEnd; it holds no line
        sub.open(client, send_ticks=True)
        client.send(57, 1, req_id)
        return
    check_new(client, req_id, takes_line=True)
    sub.open(client, send_ticks=is_live(client))
    start(client, sub)


def cancel_mkt_data(client: Client, msg: FieldReader) -> None:
    msg.skip()
    cancel(client, msg.request_id(), MarketData)


def req_market_data_type(client: Client, msg: FieldReader) -> None:
    """Applies to this client's streams from now on, as in TWS (and is forgotten with it)."""
    msg.skip()
    data_type = msg.int()
    if data_type not in (1, 2, 3, 4):
        raise errors.bad_request(f"market data type {data_type} is not 1, 2, 3 or 4")
    client.market_data_type = data_type


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

    def advance(self, client: Client, now: int, live: bool) -> None:
        if live:
            for at in range(max(self.done + 1, now - MAX_CATCH_UP + 1), now + 1):
                fields = self._tick(at)
                if fields is not None:
                    client.send(99, self.req_id, self.kind, at, *fields)
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


def tick_by_tick_lines(config: GatewayConfig) -> int:
    lines = config.tick_by_tick_lines
    return max(1, config.market_data_lines * 5 // 100) if lines is None else lines


def req_tick_by_tick(client: Client, msg: FieldReader) -> None:
    req_id = msg.request_id()
    query = msg.contract()
    kind_name = msg.str().strip()
    msg.int()  # numberOfTicks: no history first
    msg.bool()  # ignoreSize
    if kind_name not in TICK_BY_TICK:
        raise errors.invalid_request(
            f"Invalid tick type {kind_name!r}: use Last, AllLast, BidAsk or MidPoint."
        )
    inst = resolve(client.state.catalog, query)
    check_new(client, req_id, takes_line=False)
    if _count(client, lambda s: isinstance(s, TickByTick)) >= tick_by_tick_lines(
        client.state.config
    ):
        raise errors.MAX_TICK_BY_TICK
    now = int(client.now().timestamp())
    sub = TickByTick(req_id, inst, TICK_BY_TICK[kind_name], done=now - 1)
    sub.advance(client, now, is_live(client))
    start(client, sub)


def cancel_tick_by_tick(client: Client, msg: FieldReader) -> None:
    cancel(client, msg.request_id(), TickByTick)
