"""The order engine's fills: how much of a working order one second fills, and what a fill
does (IB's order states, executions and commission reports).

- **Size.** `ibsim.matching` says at what price and up to what size an order fills against the
  second's quote; fills in one second share its displayed size (per conId and side, or the
  trades printed); a VWAP / TWAP order fills what its schedule is due; a FOK order all or nothing.
- **Booking.** A fill is split over the order's FA accounts (`ibsim.allocation`) and booked as
  one Execution per account in the gateway's Book (positions, cash and commission), with IB's
  execId form.
- **News.** execDetails (reqId -1) for each account, openOrder + orderStatus, then
  commissionReport; one report in four (by execId) comes `config.late_commission` real seconds
  later, and until then the Book has the execution without its commission.
- **Links.** A fill in an OCA group cancels or reduces the group's other orders; one in a
  bracket's child reduces the other children.

Order states stay the engine's (ibsim.engine): a fill changes them through `Engine.update` and
`Engine.cancel_work`. Imports only ibsim.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ibsim import allocation, matching, trades
from ibsim.book import Execution, multiplier
from ibsim.instruments import Instrument
from ibsim.order_times import due
from ibsim.orders import CANCELLED
from ibsim.quotes import Quote
from ibsim.work import Work

if TYPE_CHECKING:
    from ibsim.engine import Engine

LATE_EVERY = 4  # one commission report in this many comes late


class Fills:
    """The executions of one engine's orders."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._taken: dict[tuple[int, str], tuple[int, float]] = {}  # (conId, pool): second, size
        self._exec_seq = (0, 0)  # the second of the last execId, and its sequence number

    def match(self, work: Work, quote: Quote, t: int) -> None:
        """Fill what this second lets the order fill (an algo: what its schedule is due)."""
        o, tick = work.order, work.market.min_tick
        wanted = o.remaining
        if work.window is not None:
            wanted = min(wanted, due(o.quantity, *work.window, t) - o.filled)
        if wanted <= 0:
            return
        working_as, limit = matching.elected(work.terms, work.stop, tick)
        found = matching.match(work.terms, working_as, limit, quote, tick)
        if found is None:
            return
        second, used = self._taken.get((o.con_id, found.pool), (t, 0.0))
        used = used if second == t else 0.0
        size = min(wanted, found.size - used)
        if size <= 0 or (o.tif == "FOK" and size < o.remaining):
            return
        self._taken[(o.con_id, found.pool)] = (t, used + size)
        self.fill(work, size, found.price, t)

    def fill(self, work: Work, size: float, price: float, t: int) -> None:
        """Book a fill (split over the FA accounts), then report it: execDetails, openOrder,
        orderStatus, commissionReport; then the OCA group's and bracket's other orders."""
        o, news = work.order, self.engine.news
        if work.targets:
            owed = {a: q - work.allocated.get(a, 0.0) for a, q in work.targets.items()}
            parts = allocation.allocate(size, owed)
        else:
            parts = {o.account: size}
        booked = [self._execute(work, a, shares, price, t) for a, shares in parts.items() if shares]
        filled = o.filled + size
        average = round((o.avg_fill_price * o.filled + price * size) / filled, 10)
        status = "Filled" if filled >= o.quantity - 1e-9 else "Submitted"
        self.engine.update(
            work,
            replace(o, filled=filled, avg_fill_price=average, last_fill_price=price, status=status),
        )
        for ex in booked:
            if ex.commission_delay > 0:
                asyncio.get_running_loop().call_later(ex.commission_delay, self._late, ex.exec_id)
            else:
                news.commission(ex)
        self._one_cancels_all(work, size)

    def _execute(self, work: Work, account: str, shares: float, price: float, t: int) -> Execution:
        """Book one fill in one account and send its execDetails."""
        o, inst, config = work.order, work.market, self.engine.gateway.config
        exec_id = self._exec_id(t)
        late = zlib.crc32(exec_id.encode()) % LATE_EVERY == 0
        ex = self.engine.book.record_fill(Execution(
            exec_id=exec_id, account=account, con_id=o.con_id, side=trades.SIDES[o.action],
            shares=shares, price=price, time=datetime.fromtimestamp(t, UTC), order_id=o.order_id,
            perm_id=o.perm_id, client_id=o.client_id, order_ref=o.order_ref,
            exchange=_exchange(inst), commission_currency=inst.currency,
            commission=config.commissions.charge(inst.sec_type, shares, price, multiplier(inst)),
            commission_delay=config.late_commission if late else 0.0,
        ), inst)  # fmt: skip
        if account in work.targets:
            work.allocated[account] = work.allocated.get(account, 0.0) + shares
        before, value = work.fills.get(account, (0.0, 0.0))
        work.fills[account] = (before + shares, value + shares * price)
        cum_shares, cum_value = work.fills[account]
        self.engine.news.execution(ex, inst, (cum_shares, round(cum_value / cum_shares, 10)))
        return ex

    def _late(self, exec_id: str) -> None:
        """A late commission report: known from now on, and sent to the placing client."""
        book = self.engine.book
        ex = next((e for e in book.executions if e.exec_id == exec_id), None)
        if ex is not None:
            ex = replace(ex, commission_delay=0.0)
            book.put_execution(ex)
            self.engine.news.commission(ex)

    def _exec_id(self, t: int) -> str:
        """IB's execId form: `0000e0d5.<second, hex>.<sequence>.01` (corrections end .02)."""
        taken = {e.exec_id for e in self.engine.book.executions}
        second, seq = self._exec_seq
        seq = seq if second == t else 0
        while True:
            seq += 1
            exec_id = f"0000e0d5.{t:08x}.{seq:02x}.01"
            if exec_id not in taken:
                self._exec_seq = (t, seq)
                return exec_id

    def _one_cancels_all(self, work: Work, size: float) -> None:
        """A fill in an OCA group cancels (ocaType 1) or reduces (2, 3) the group's other orders;
        one in a bracket's child reduces the other children, as IB links them."""
        o, engine = work.order, self.engine
        for peer in list(engine.working.values()):
            p = peer.order
            same_group = bool(o.oca_group) and p.oca_group == o.oca_group
            siblings = bool(o.parent_perm_id) and p.parent_perm_id == o.parent_perm_id
            if peer is work or p.done or not (same_group or siblings):
                continue
            if same_group and o.oca_type in (0, 1):
                text = f"{CANCELLED}An order of its OCA group {o.oca_group} filled."
                engine.cancel_work(peer, text)
            elif p.quantity - size <= p.filled + 1e-9:
                engine.cancel_work(peer, f"{CANCELLED}Its OCA peer filled its quantity.")
            else:
                engine.update(peer, replace(p, quantity=p.quantity - size))


def _exchange(inst: Instrument) -> str:
    """Where a fill is reported: ISLAND for stocks, the listing exchange for the rest."""
    if inst.sec_type == "STK":
        return "ISLAND"
    if inst.exchange == "SMART" and inst.primary_exchange:
        return inst.primary_exchange
    return inst.exchange
