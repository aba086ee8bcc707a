"""reqRealTimeBars: a 5-second bar as each window of gateway time closes.

A streamed bar is the historical 5-second bar of the same start, field for field: both come
from ibsim.market.bars over the same one-second atoms and are formatted by
ibsim.handlers.barformat. A pump that wakes late (a fast clock) sends every window closed since
the last one, in order; windows that close while IB's link is down or the connection is stalled
are never sent, which is the gap a client refills from history. Each subscription holds a
market data line and counts against the small-bar pacing of the login (IB's historical data
limitations): 420 when over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ibsim.handlers import barformat, streaming
from ibsim.handlers.client import Client
from ibsim.handlers.fields import FieldReader
from ibsim.handlers.historical import resolve
from ibsim.market import errors, rules
from ibsim.market.bars import bars_between
from ibsim.market.instruments import Instrument
from ibsim.market.pacing import PacedRequest

BAR_SECONDS = 5  # the only real-time bar IB builds
SOURCES = ("TRADES", "MIDPOINT", "BID", "ASK")
BAR_VERSION = 3  # the version field of realtimeBar (clients skip it)


@dataclass(eq=False)
class RealTimeBars:
    req_id: int
    inst: Instrument
    what: str
    use_rth: bool
    next_start: int  # the window [next_start, next_start + 5) is the next to send
    takes_line: ClassVar[bool] = True

    def advance(self, client: Client, now: int, live: bool) -> None:
        closed = now // BAR_SECONDS * BAR_SECONDS  # every window starting before it has closed
        if closed <= self.next_start:
            return
        if live:
            bars = bars_between(
                self.inst, self.what, self.use_rth, BAR_SECONDS, self.next_start, closed
            )  # outside the session's hours there are none, so nothing is sent
            if len(bars.values):
                table = barformat.bar_table(bars, self.inst, self.what, format_date=2)
                for row in table.iter_rows():  # time, open, high, low, close, volume, wap, count
                    client.send(50, BAR_VERSION, self.req_id, *row)
        self.next_start = closed


def req_real_time_bars(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    req_id = msg.request_id()
    query = msg.contract()
    bar_size, what, use_rth = msg.int(), msg.str().strip().upper(), msg.bool()
    msg.str()  # realTimeBarsOptions
    inst = resolve(client.state.catalog, query)
    if bar_size != BAR_SECONDS:
        raise errors.invalid_request(
            f"Invalid bar size {bar_size}: real-time bars are 5 seconds only."
        )
    if what not in SOURCES:
        raise errors.invalid_request("What to show field is missing or incorrect.")
    rules.check_what_to_show(what, inst.sec_type)
    streaming.check_new(client, req_id, takes_line=True)
    now = client.now()
    paced = PacedRequest(
        at=now.timestamp(),
        key=(inst.con_id, query.exchange, what),
        identity=("realtime", inst.con_id, query.exchange, what, use_rth),
        weight=1,
    )
    if not client.state.pacer.admit(paced):
        raise errors.realtime_query("Historical data request pacing violation")
    start = int(now.timestamp()) // BAR_SECONDS * BAR_SECONDS  # the window open now comes first
    streaming.start(client, RealTimeBars(req_id, inst, what, use_rth, start))


def cancel_real_time_bars(client: Client, msg: FieldReader) -> None:
    msg.skip()
    streaming.cancel(client, msg.request_id(), RealTimeBars)
