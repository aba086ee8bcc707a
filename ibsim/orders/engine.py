"""The order engine: the orders placed through the API, worked against the synthetic market at
the gateway's time, with IB's states and errors (IB's order pages: order states, order types).
This module owns each order's lifecycle: placing, modifying, cancelling, transmitting
brackets, whatIf previews, the evaluation loop, the state changes and what a fill changes and
reports; what a fill books is `ibsim.orders.fills`.

- **States.** A placed order is announced PreSubmitted (openOrder + orderStatus), becomes
  Submitted when it works at the exchange (a stop stays PreSubmitted until triggered, an order
  outside its hours until the session opens, a bracket child until its parent is filled, an
  order with conditions until they are met), then Filled, Cancelled (error 202) or, refused,
  Inactive (error 201 or IB's code). Every change is announced with openOrder + orderStatus.
- **Store.** Every state lives in the gateway's Book: open and completed orders, executions (with
  commissions), positions and cash. So reqOpenOrders, reqCompletedOrders, reqExecutions and the
  account requests report engine orders like any other, to a client that reconnects too. Orders
  a scenario seeds are IB's: they are reported, modified and cancelled, but not worked.
- **Market.** `ibsim.market.quotes.quote_at` at the second of the gateway's now;
  `ibsim.orders.matching` says what triggers and fills, `ibsim.orders.products` what each
  security type takes (crypto's cash quantity, size rules), `ibsim.orders.order_times` when an
  order may work, `ibsim.orders.conditions` whether its conditions hold. What the engine
  remembers of each order is `ibsim.orders.work.Work`.
- **News** goes out through the `OrderNews` the engine is given (ibsim.orders.news): the wire
  side sends it to the placing client (held while IB's link is down); with nobody connected it
  is only in the Book. A fill's commission report comes at once, or `config.late_commission`
  real seconds later for one fill in four.
- **Links.** A fill in an OCA group cancels or reduces the group's other orders; one in a
  bracket's child reduces the other children.
- **Loop.** `evaluate` runs every `config.order_interval` real seconds and after each placement
  or modification; it runs without clients and across gateway restarts; `stop` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass, replace

from ibsim.accounts.book import Book, Order
from ibsim.clock import TWS_ZONE
from ibsim.config import GatewayConfig
from ibsim.market import errors
from ibsim.market.catalog import Catalog, ContractQuery
from ibsim.market.instruments import Instrument
from ibsim.market.quotes import Quote, quote_at
from ibsim.orders import allocation, conditions, matching, order_times, products
from ibsim.orders.conditions import GatewayMarket
from ibsim.orders.fills import Fills
from ibsim.orders.matching import Refused, Reject, rejected
from ibsim.orders.news import OrderNews
from ibsim.orders.order_times import market_hours, rth_only
from ibsim.orders.texts import (
    CANCELLED,
    MISMATCH,
    OUTSIDE_RTH_IGNORED,
    duplicate_id,
    not_cancellable,
    not_found,
    not_modifiable,
    waits_for_open,
)
from ibsim.orders.what_if import what_if
from ibsim.orders.work import Work

log = logging.getLogger("ibsim")
PERM_ID_START = 1_100_000_000  # above the scenarios' permIds


@dataclass(frozen=True)
class Placed:
    """One placeOrder as read: the contract it names and the order (no permId, no status yet)."""

    contract: ContractQuery
    order: Order
    fa_profile: str = ""  # before server version 177 only; later profiles come as faGroup


class Engine:
    """Every API order of one gateway (one IB login)."""

    def __init__(
        self, config: GatewayConfig, catalog: Catalog, book: Book, news: OrderNews
    ) -> None:
        self.config = config
        self.clock = config.clock
        self.catalog = catalog
        self.book = book
        self.news = news
        self.next_order_id = config.next_valid_id  # reqIds' answer: above every id used
        self.working: dict[int, Work] = {}  # permId -> live orders being worked
        self.held: dict[int, Work] = {}  # permId -> placed with transmit=0, not sent on yet
        known = [*book.open_orders, *book.completed_orders]
        self._perm_ids = itertools.count(max([PERM_ID_START, *(o.perm_id for o in known)]) + 1)
        self._highest: dict[int, int] = {}  # clientId -> the highest order id it used
        for o in known:
            self._highest[o.client_id] = max(self._highest.get(o.client_id, 0), o.order_id)
        self._floor: dict[int, int] = {}  # clientId -> the nextValidId it was given at connect
        self._quotes: dict[int, Quote] = {}  # this evaluation's quotes by conId
        self._evaluated_at = -1  # the gateway second of the last evaluation
        self._task: asyncio.Task | None = None
        self.fills = Fills(book, config)  # what a working order fills, and what a fill books
        self.market = GatewayMarket(catalog, book, self.clock, self._quote)  # what conditions read

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    # ----------------------------------------------------------------- the loop
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        """Evaluate whenever the gateway's second has moved on (placements and modifications
        are evaluated at once, so nothing else can change within one second)."""
        while True:
            await asyncio.sleep(self.config.order_interval)
            if self.now() == self._evaluated_at:
                continue
            try:
                self.evaluate()
            except Exception:  # a bug in one evaluation must not stop every order
                log.exception("order evaluation failed")

    # ----------------------------------------------------------------- requests
    def handed_out(self, client_id: int, next_valid_id: int) -> None:
        """A client connected and was given `next_valid_id`: its new orders start there."""
        self._floor[client_id] = next_valid_id

    def place(self, placed: Placed) -> None:
        """placeOrder: a new order, a modification of a live one, or a whatIf preview."""
        order = placed.order
        client, order_id = order.client_id, order.order_id
        if order.what_if:
            self._what_if(placed)
            return
        current = self._find(client, order_id)
        if current is not None:
            if current.done:
                self.news.error(client, order_id, not_modifiable(current))
            else:
                self._modify(current, placed)
            return
        if order_id <= self._highest.get(client, 0) or order_id < self._floor.get(client, 0):
            self.news.error(client, order_id, duplicate_id(order_id))
            return
        self._highest[client] = order_id
        self.next_order_id = max(self.next_order_id, order_id + 1)
        inst = self._instrument(placed)
        if inst is None:
            return
        work = Work(replace(order, con_id=inst.con_id, perm_id=next(self._perm_ids)), inst)
        try:
            self._prepare(work, placed.fa_profile)
        except Refused as refusal:
            self._refuse(work, refusal.reject)
            return
        if order.transmit:
            self._transmit(work)
            self.evaluate()
        else:
            self.held[work.order.perm_id] = work

    def cancel(self, client_id: int, order_id: int) -> None:
        """cancelOrder: the client's own order, live or held; 10147 / 10148 otherwise."""
        order = self._find(client_id, order_id)
        if order is None:
            self.news.error(client_id, order_id, not_found(order_id))
        elif order.done:
            self.news.error(client_id, order_id, not_cancellable(order))
        else:
            self.cancel_work(self._work_of(order), CANCELLED)

    def cancel_all(self) -> None:
        """reqGlobalCancel: every open order of every client, held ones too."""
        for order in [*(w.order for w in self.held.values()), *self.book.open_orders]:
            if self._is_live(order.perm_id):  # not cancelled with its parent meanwhile
                self.cancel_work(self._work_of(order), CANCELLED)

    # ----------------------------------------------------------------- evaluation
    def evaluate(self) -> None:
        """Work every live order once at the gateway's now."""
        now = self._evaluated_at = self.now()
        self._quotes = {}
        for work in list(self.working.values()):
            if work.order.perm_id in self.working:  # an earlier fill may have cancelled it
                self._step(work, now)

    def _quote(self, inst: Instrument, t: int) -> Quote:
        """The instrument's quote at `t`, computed once per evaluation."""
        found = self._quotes.get(inst.con_id)
        if found is None or found.at != t:
            found = self._quotes[inst.con_id] = quote_at(inst, t)
        return found

    def _step(self, work: Work, t: int) -> None:
        o, inst = work.order, work.market
        if o.parent_perm_id and not self._parent_filled(o):
            return
        if o.conditions and not work.armed:
            if not conditions.met(o.conditions, t, self.market):
                return
            if o.conditions_cancel_order:
                self.cancel_work(work, f"{CANCELLED}Its conditions were met.")
                return
            work.armed = True
        if work.close_at is not None:
            self._auction(work, t)
            return
        if work.expires_at is not None and t >= work.expires_at:
            expired = f"{CANCELLED}The {o.tif} order expired at the end of its session."
            self.cancel_work(work, expired)
            return
        opens, closes = market_hours(inst, t, rth_only(o))
        if not opens <= t < closes:
            if o.tif in ("IOC", "FOK"):
                self.cancel_work(work, f"{CANCELLED}The market is closed for this {o.tif} order.")
            return
        quote = self._quote(inst, t)
        if o.order_type in matching.TRIGGERED and not work.triggered:
            if o.order_type in matching.TRAILING:
                work.stop = matching.trail(work.terms, work.stop, quote, inst.min_tick)
                self.update(work, replace(o, trail_stop_price=work.stop), news=False)
            if not matching.triggered(work.terms, work.stop, quote):
                return
            work.triggered = True
        if work.order.status != "Submitted":
            self.update(work, replace(work.order, status="Submitted"))
        fill = self.fills.match(work, quote, t)
        if fill is not None:
            self._fill(work, fill.size, fill.price, t)
        o = work.order
        if o.done:
            return
        if work.window is not None and t >= work.window[1] and not work.past_end:
            self.cancel_work(work, f"{CANCELLED}The {o.algo_strategy} order reached its end time.")
        elif o.tif in ("IOC", "FOK"):
            self.cancel_work(work, f"{CANCELLED}The {o.tif} order was not filled at once.")

    def _auction(self, work: Work, t: int) -> None:
        """MOC / LOC: Submitted once the session is open, executed at its close."""
        o, inst, close_at = work.order, work.market, work.close_at or 0
        if t < close_at:
            if market_hours(inst, t, True)[0] <= t and o.status != "Submitted":
                self.update(work, replace(o, status="Submitted"))
            return
        close = quote_at(inst, close_at - 1).last
        if matching.auction(work.terms, close):
            self._fill(work, o.remaining, close, close_at)
        else:
            self.cancel_work(work, f"{CANCELLED}The close printed outside the LOC order's limit.")

    # ----------------------------------------------------------------- fills
    def _fill(self, work: Work, size: float, price: float, t: int) -> None:
        """Book a fill (ibsim.orders.fills), then report it: execDetails, openOrder,
        orderStatus, commissionReport; then the OCA group's and bracket's other orders."""
        o = work.order
        booked = self.fills.book_fill(work, size, price, t)
        for executed in booked:
            self.news.execution(executed.execution, work.market, executed.cumulative)
        filled = o.filled + size
        average = round((o.avg_fill_price * o.filled + price * size) / filled, 10)
        status = "Filled" if filled >= o.quantity - 1e-9 else "Submitted"
        self.update(
            work,
            replace(o, filled=filled, avg_fill_price=average, last_fill_price=price, status=status),
        )
        for ex, _ in booked:
            if ex.commission_delay > 0:
                asyncio.get_running_loop().call_later(ex.commission_delay, self._late, ex.exec_id)
            else:
                self.news.commission(ex)
        self._one_cancels_all(work, size)

    def _late(self, exec_id: str) -> None:
        """A late commission report: known from now on, and sent to the placing client."""
        ex = next((e for e in self.book.executions if e.exec_id == exec_id), None)
        if ex is not None:
            ex = replace(ex, commission_delay=0.0)
            self.book.put_execution(ex)
            self.news.commission(ex)

    def _one_cancels_all(self, work: Work, size: float) -> None:
        """A fill in an OCA group cancels (ocaType 1) or reduces (2, 3) the group's other orders;
        one in a bracket's child reduces the other children, as IB links them."""
        o = work.order
        for peer in list(self.working.values()):
            p = peer.order
            same_group = bool(o.oca_group) and p.oca_group == o.oca_group
            siblings = bool(o.parent_perm_id) and p.parent_perm_id == o.parent_perm_id
            if peer is work or p.done or not (same_group or siblings):
                continue
            if same_group and o.oca_type in (0, 1):
                text = f"{CANCELLED}An order of its OCA group {o.oca_group} filled."
                self.cancel_work(peer, text)
            elif p.quantity - size <= p.filled + 1e-9:
                self.cancel_work(peer, f"{CANCELLED}Its OCA peer filled its quantity.")
            else:
                self.update(peer, replace(p, quantity=p.quantity - size))

    # ----------------------------------------------------------------- placing
    def _instrument(self, placed: Placed) -> Instrument | None:
        o = placed.order
        found = self.catalog.find(placed.contract)
        if len(found) == 1:
            return found[0]
        error = errors.NO_SECURITY if not found else errors.ambiguous(placed.contract.symbol)
        self.news.error(o.client_id, o.order_id, Reject(error.code, error.text))
        return None

    def _prepare(self, work: Work, fa_profile: str) -> None:
        """Check the order and plan it: FA targets, account, expiry, auction, algo window."""
        inst, now = work.market, self.clock.now()
        work.order = o = products.sized(work.order, inst, quote_at(inst, self.now()))
        reject = (
            products.check(o, inst)
            or matching.check(work.terms, inst.min_tick)
            or conditions.check(o.conditions, self.now())
        )
        if reject is not None:
            raise Refused(reject)
        if inst.sec_type == "IND":
            raise Refused(rejected("An index cannot be traded: trade its futures or an ETF on it."))
        if inst.expired(now):
            raise Refused(rejected(f"The contract {inst.local_symbol} has expired."))
        if o.parent_id and self._find(o.client_id, o.parent_id) is None:
            raise Refused(rejected(f"Its parent order {o.parent_id} is not one of this client's."))
        work.targets = allocation.targets(self.book, self.catalog, now, o, fa_profile)
        if not o.account and not self.book.master:  # IB fills in a single account's id
            work.order = replace(o, account=self.book.accounts[0].id)
        self._schedule(work)

    def _schedule(self, work: Work) -> None:
        """When the order may work: its expiry, its auction, its algo's window."""
        o, inst, now = work.order, work.market, self.now()
        work.expires_at = order_times.expiry(o.tif, o.good_till_date, inst, now, rth_only(o))
        auction = o.order_type in matching.AUCTION
        work.close_at = order_times.auction_close(inst, now) if auction else None
        work.window, work.past_end = order_times.algo_window(
            o.algo_strategy, dict(o.algo_params), inst, now, self.config.algo_span
        )

    def _transmit(self, work: Work) -> None:
        """Send on an order and its bracket: the held parent and the held siblings."""
        o = work.order
        root = o.parent_id or o.order_id
        chain = [w for w in self.held.values() if w.order.client_id == o.client_id and (
            w.order.order_id == root or w.order.parent_id == root)]  # fmt: skip
        for member in sorted({id(w): w for w in (*chain, work)}.values(), key=_order_id):
            self.held.pop(member.order.perm_id, None)
            self._start(member)

    def _start(self, work: Work) -> None:
        """An order reaches IB: announced PreSubmitted, with 2109 / 399 when it must wait."""
        o, inst, now = work.order, work.market, self.now()
        if o.parent_id:
            parent = self._find(o.client_id, o.parent_id)
            work.order = o = replace(o, parent_perm_id=parent.perm_id if parent else 0)
        if o.outside_rth and rth_only(o):
            self.news.error(o.client_id, o.order_id, OUTSIDE_RTH_IGNORED)
        opens = market_hours(inst, now, rth_only(o))[0]
        if opens > now and o.order_type not in matching.AUCTION:
            self.news.error(o.client_id, o.order_id, waits_for_open(o, inst, opens))
        self.working[o.perm_id] = work
        self.update(work, replace(o, status="PreSubmitted"))

    def _modify(self, current: Order, placed: Placed) -> None:
        """placeOrder on a live id: new quantity, prices, time in force...; the same contract and
        action. A refused modification (105, 110) leaves the order as it was."""
        new, work = placed.order, self._work_of(current)
        changed = replace(current, **{name: getattr(new, name) for name in _MODIFIABLE})
        trailing = (new.aux_price, new.trailing_percent) != (
            current.aux_price,
            current.trailing_percent,
        )
        probe = replace(work, order=changed, stop=None if trailing else work.stop)
        reject = (products.check(changed, work.inst) if work.inst else None) or matching.check(
            probe.terms, work.inst.min_tick if work.inst else 0.01
        )
        if reject is None and (new.action != current.action or new.quantity <= current.filled
                               or placed.contract.con_id not in (0, current.con_id)):  # fmt: skip
            reject = MISMATCH
        if reject is None and work.inst is not None and not _passive(self, current):
            try:
                self._schedule(probe)
            except Refused as refusal:
                reject = refusal.reject
        if reject is not None:
            code = 110 if reject.code == 110 else 105
            self.news.error(current.client_id, current.order_id, Reject(code, reject.text))
            return
        for name in ("expires_at", "close_at", "window", "past_end", "stop"):
            setattr(work, name, getattr(probe, name))
        if current.perm_id in self.held:
            work.order = changed
            if changed.transmit:
                self._transmit(work)
        else:
            self.update(work, changed)
        self.evaluate()

    def _what_if(self, placed: Placed) -> None:
        """whatIf: one openOrder (whatIf 1, PreSubmitted) with the margin and commission the
        order would add to its accounts; nothing is placed."""
        o = placed.order
        inst = self._instrument(placed)
        if inst is None:
            return
        work = Work(replace(o, con_id=inst.con_id), inst)
        try:
            self._prepare(work, placed.fa_profile)
        except Refused as refusal:
            self.news.error(o.client_id, o.order_id, refusal.reject)
            return
        accounts = list(work.targets) or [work.order.account]
        figures = {
            key: sum(allocation.account_figures(
                self.book, self.catalog, self.clock.now(), accounts, key
            ).values())
            for key in ("InitMarginReq", "MaintMarginReq", "EquityWithLoanValue")
        }  # fmt: skip
        preview = what_if(work.order, inst, self._quote(inst, self.now()), figures, self.config)
        self.news.preview(replace(work.order, status="PreSubmitted", preview=preview), inst)

    def _refuse(self, work: Work, reject: Reject) -> None:
        """A refused order: the error, then openOrder + orderStatus Inactive; it is completed."""
        self.news.error(work.order.client_id, work.order.order_id, reject)
        self.update(work, replace(work.order, status="Inactive"))

    # ----------------------------------------------------------------- state
    def update(self, work: Work, order: Order, news: bool = True) -> None:
        """An order's new state: into the Book (a finished one with its completion time, out of
        the engine's hands) and, with `news`, to its client."""
        if order.done and not order.completed_time:
            order = replace(order, completed_time=self._stamp())
        if work.targets and order.quantity != work.order.quantity:  # FA: the same weights
            work.targets = allocation.split(order.quantity, work.targets)
        work.order = order
        if order.done:
            self.working.pop(order.perm_id, None)
        self.book.put_order(order)
        if news:
            self.news.order(order, work.inst)

    def cancel_work(self, work: Work, text: str) -> None:
        """Cancel an order and its children: orderStatus Cancelled, then error 202."""
        o = work.order
        if self.held.pop(o.perm_id, None) is not None:  # never sent on: only its client knows it
            work.order = replace(o, status="Cancelled")
            self.news.status(work.order)
        else:
            self.update(work, replace(o, status="Cancelled"))
        self.news.error(o.client_id, o.order_id, Reject(202, text))
        for child in [*self.working.values(), *self.held.values()]:
            c = child.order
            mine = c.parent_perm_id == o.perm_id or (
                c.perm_id in self.held and (c.client_id, c.parent_id) == (o.client_id, o.order_id)
            )
            if mine and not c.done and self._is_live(c.perm_id):
                self.cancel_work(child, f"{CANCELLED}Its parent order was cancelled.")

    def _stamp(self) -> str:
        return f"{self.clock.now().astimezone(TWS_ZONE):%Y%m%d %H:%M:%S} America/New_York"

    # ----------------------------------------------------------------- lookups
    def _find(self, client_id: int, order_id: int) -> Order | None:
        """The client's order with this id: held, open or completed (the latest)."""
        held = (w.order for w in self.held.values())
        for order in (*held, *self.book.open_orders, *reversed(self.book.completed_orders)):
            if (order.client_id, order.order_id) == (client_id, order_id):
                return order
        return None

    def _work_of(self, order: Order) -> Work:
        """The engine's Work for an order, or a passing one for an order it does not work."""
        found = self.working.get(order.perm_id) or self.held.get(order.perm_id)
        return found or Work(order, self.catalog.by_con_id(order.con_id))

    def _is_live(self, perm_id: int) -> bool:
        return perm_id in self.held or any(o.perm_id == perm_id for o in self.book.open_orders)

    def _parent_filled(self, order: Order) -> bool:
        if order.parent_perm_id in self.working:
            return False
        done = (o for o in self.book.completed_orders if o.perm_id == order.parent_perm_id)
        parent = next(done, None)
        return parent is not None and parent.status == "Filled"


# What a modification may change (placeOrder on a live id); contract and action stay.
_MODIFIABLE = (
    "quantity", "order_type", "limit_price", "aux_price", "tif", "order_ref", "outside_rth",
    "oca_group", "oca_type", "good_till_date", "trail_stop_price", "trailing_percent",
    "lmt_price_offset", "algo_strategy", "algo_params", "transmit",
)  # fmt: skip


def _passive(engine: Engine, order: Order) -> bool:
    """A scenario's order: reported and cancellable, but not worked by the engine."""
    return order.perm_id not in engine.working and order.perm_id not in engine.held


def _order_id(work: Work) -> int:
    return work.order.order_id
