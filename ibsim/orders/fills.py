"""The order engine's fills: how much of a working order one second fills, and what a fill
books (IB's executions, with their commissions).

- **Size.** `ibsim.orders.matching` says at what price and up to what size an order fills
  against the second's quote; fills in one second share its displayed size (per conId and side,
  or the trades printed); a VWAP / TWAP order fills what its schedule is due; a FOK order all
  or nothing.
- **Booking.** A fill is split over the order's FA accounts (`ibsim.orders.allocation`) and
  booked as one Execution per account in the gateway's Book (positions, cash and commission),
  with IB's execId form. One commission in four (by execId) is booked as late: its report comes
  `config.late_commission` real seconds after the fill.

`Fills` hands back what it booked (`Executed`, values); the engine (ibsim.orders.engine) changes
the order's state, sends the news and links the order's OCA group and bracket.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import NamedTuple

from ibsim.accounts.book import SIDES, Book, Execution
from ibsim.config import GatewayConfig
from ibsim.market.instruments import Instrument
from ibsim.market.quotes import Quote
from ibsim.orders import allocation, matching
from ibsim.orders.order_times import due
from ibsim.orders.work import Work

LATE_EVERY = 4  # one commission report in this many comes late


class Fill(NamedTuple):
    """What one second fills of a working order: the size and the price."""

    size: float
    price: float


class Executed(NamedTuple):
    """One account's part of a fill, as booked: the execution, and cumQty and avgPrice of the
    order's fills in that account so far."""

    execution: Execution
    cumulative: tuple[float, float]


class Fills:
    """The executions of one engine's orders."""

    def __init__(self, book: Book, config: GatewayConfig) -> None:
        self.book = book
        self.config = config
        self._taken: dict[tuple[int, str], tuple[int, float]] = {}  # (conId, pool): second, size
        self._exec_seq = (0, 0)  # the second of the last execId, and its sequence number

    def match(self, work: Work, quote: Quote, t: int) -> Fill | None:
        """What this second lets the order fill (an algo: what its schedule is due), taken off
        the second's displayed size; None for nothing."""
        o, tick = work.order, work.market.min_tick
        wanted = o.remaining
        if work.window is not None:
            wanted = min(wanted, due(o.quantity, *work.window, t) - o.filled)
        if wanted <= 0:
            return None
        working_as, limit = matching.elected(work.terms, work.stop, tick)
        found = matching.match(work.terms, working_as, limit, quote, tick)
        if found is None:
            return None
        second, used = self._taken.get((o.con_id, found.pool), (t, 0.0))
        used = used if second == t else 0.0
        size = min(wanted, found.size - used)
        if size <= 0 or (o.tif == "FOK" and size < o.remaining):
            return None
        self._taken[(o.con_id, found.pool)] = (t, used + size)
        return Fill(size, found.price)

    def book_fill(self, work: Work, size: float, price: float, t: int) -> list[Executed]:
        """Book a fill, split over the order's FA accounts: one execution per account."""
        o = work.order
        if work.targets:
            owed = {a: q - work.allocated.get(a, 0.0) for a, q in work.targets.items()}
            parts = allocation.allocate(size, owed)
        else:
            parts = {o.account: size}
        return [self._execute(work, a, shares, price, t) for a, shares in parts.items() if shares]

    def _execute(self, work: Work, account: str, shares: float, price: float, t: int) -> Executed:
        """Book one fill in one account."""
        o, inst, config = work.order, work.market, self.config
        mult = inst.value_multiplier
        exec_id = self._exec_id(t)
        late = zlib.crc32(exec_id.encode()) % LATE_EVERY == 0
        ex = self.book.record_fill(Execution(
            exec_id=exec_id, account=account, con_id=o.con_id, side=SIDES[o.action],
            shares=shares, price=price, time=datetime.fromtimestamp(t, UTC), order_id=o.order_id,
            perm_id=o.perm_id, client_id=o.client_id, order_ref=o.order_ref,
            exchange=_exchange(inst), commission_currency=inst.currency,
            commission=config.commissions.charge(inst.sec_type, shares, price, mult),
            commission_delay=config.late_commission if late else 0.0,
        ), inst)  # fmt: skip
        if account in work.targets:
            work.allocated[account] = work.allocated.get(account, 0.0) + shares
        before, value = work.fills.get(account, (0.0, 0.0))
        work.fills[account] = (before + shares, value + shares * price)
        cum_shares, cum_value = work.fills[account]
        return Executed(ex, (cum_shares, round(cum_value / cum_shares, 10)))

    def _exec_id(self, t: int) -> str:
        """IB's execId form: `0000e0d5.<second, hex>.<sequence>.01` (corrections end .02)."""
        taken = {e.exec_id for e in self.book.executions}
        second, seq = self._exec_seq
        seq = seq if second == t else 0
        while True:
            seq += 1
            exec_id = f"0000e0d5.{t:08x}.{seq:02x}.01"
            if exec_id not in taken:
                self._exec_seq = (t, seq)
                return exec_id


def _exchange(inst: Instrument) -> str:
    """Where a fill is reported: ISLAND for stocks, the listing exchange for the rest."""
    if inst.sec_type == "STK":
        return "ISLAND"
    if inst.exchange == "SMART" and inst.primary_exchange:
        return inst.primary_exchange
    return inst.exchange
