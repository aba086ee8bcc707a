"""The order engine: the orders placed through the API, worked against the synthetic market at
the gateway's time, with IB's states, fills, commissions and errors (research/tws-protocol.md
§3.6, research/ib-rules.md §5).

- **States.** A placed order is announced PreSubmitted (openOrder + orderStatus), becomes
  Submitted when it works at the exchange (a stop stays PreSubmitted until triggered, an order
  outside its hours until the session opens, a bracket child until its parent is filled), then
  Filled, Cancelled (error 202) or, refused, Inactive (error 201 or IB's code). Every change is
  announced with openOrder + orderStatus. A fill sends execDetails (reqId -1), openOrder,
  orderStatus and commissionReport; one report in four (by execId) comes
  `config.late_commission` real seconds later.
- **Store.** Every state lives in the gateway's Book: open and completed orders, executions (with
  commissions), positions and cash. So reqOpenOrders, reqCompletedOrders, reqExecutions and the
  account requests report engine orders like any other, to a client that reconnects too. Orders
  a scenario seeds are IB's: they are reported, modified and cancelled, but not worked.
- **Market.** `ibsim.quotes.quote_at` at the second of the gateway's now; `ibsim.matching` says
  what triggers and fills. Fills in one second share its displayed size.
- **News** goes to the placing client's current session through `ClientSession.notify` (held
  while IB's link is down); with nobody connected it is only in the Book.
- **Loop.** `evaluate` runs every `config.order_interval` real seconds and after each placement
  or modification; it runs without clients and across `Gateway.restart`; `stop` ends it.

Imports only ibsim.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ibsim import allocation, errors, matching, trades, valuation
from ibsim.book import Execution, Order, multiplier
from ibsim.instruments import Instrument
from ibsim.matching import Refused, Reject, market_hours, rejected
from ibsim.orders import Placed
from ibsim.quotes import Quote, quote_at
from ibsim.sessions import VENUES

if TYPE_CHECKING:
    from ibsim.server import Gateway
    from ibsim.session import ClientSession

log = logging.getLogger("ibsim")
TWS_ZONE = ZoneInfo("America/New_York")
PERM_ID_START = 1_100_000_000  # above the scenarios' permIds
LATE_EVERY = 4  # one commission report in this many comes late

CANCELLED = "Order Canceled - reason:"
MUST_ALLOCATE = Reject(
    436, "You must specify an allocation (either a single account, group, or profile)."
)
MISMATCH = Reject(
    105,
    "Order being modified does not match the original order: keep its contract and action, and "
    "a quantity above the filled quantity.",
)
OUTSIDE_RTH_IGNORED = errors.IBError(
    2109,
    "Order Event Warning: Attribute 'Outside Regular Trading Hours' is ignored based on the order "
    "type and destination. PlaceOrder is now being processed.",
)


def duplicate_id(order_id: int) -> Reject:
    return Reject(
        103, f"Duplicate order id {order_id}: use an id above every id this client used (reqIds)."
    )


@dataclass
class Work:
    """An order the engine works, and what it remembers between evaluations."""

    order: Order
    inst: Instrument | None  # None: a scenario's order on a conId the catalog does not know
    expires_at: int | None = None  # DAY / GTD: cancelled from this second (epoch)
    close_at: int | None = None  # MOC / LOC: the close they execute at
    window: tuple[int, int] | None = None  # VWAP / TWAP: slices from start to end
    past_end: bool = False  # VWAP / TWAP: allowPastEndTime
    stop: float | None = None  # TRAIL: the current stop
    triggered: bool = False
    targets: dict[str, float] = field(default_factory=dict)  # FA: account -> quantity
    allocated: dict[str, float] = field(default_factory=dict)  # FA: account -> filled
    fills: dict[str, tuple[float, float]] = field(default_factory=dict)  # shares, value

    @property
    def terms(self) -> matching.Terms:
        o = self.order
        return matching.Terms(
            o.action, o.order_type, o.quantity, o.limit_price, o.aux_price, o.trailing_percent,
            o.trail_stop_price if self.stop is None else self.stop, o.lmt_price_offset, o.tif,
            o.good_till_date, o.algo_strategy,
        )  # fmt: skip


class Engine:
    """Every API order of one gateway (one IB login)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.working: dict[int, Work] = {}  # permId -> live orders being worked
        self.held: dict[int, Work] = {}  # permId -> placed with transmit=0, not sent on yet
        known = [*gateway.book.open_orders, *gateway.book.completed_orders]
        self._perm_ids = itertools.count(max([PERM_ID_START, *(o.perm_id for o in known)]) + 1)
        self._highest: dict[int, int] = {}  # clientId -> the highest order id it used
        for o in known:
            self._highest[o.client_id] = max(self._highest.get(o.client_id, 0), o.order_id)
        self._taken: dict[tuple[int, str], tuple[int, float]] = {}  # (conId, side) -> second, size
        self._exec_seq: tuple[int, int] = (0, 0)  # second, last sequence number used in it
        self._task: asyncio.Task | None = None

    @property
    def book(self):
        return self.gateway.book

    def now(self) -> int:
        return int(self.gateway.clock.now().timestamp())

    # ----------------------------------------------------------------- the loop
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.gateway.config.order_interval)
            try:
                self.evaluate()
            except Exception:  # a bug in one evaluation must not stop every order
                log.exception("order evaluation failed")

    # ----------------------------------------------------------------- requests
    def place(self, session: ClientSession, placed: Placed) -> None:
        """placeOrder: a new order, a modification of a live one, or a whatIf preview."""
        order = placed.order
        client, order_id = order.client_id, order.order_id
        if order.what_if:
            self._what_if(placed)
            return
        current = self._find(client, order_id)
        if current is not None:
            if current.done:
                self._error(client, order_id, _finished(current))
            else:
                self._modify(current, placed)
            return
        if order_id <= self._highest.get(client, 0):
            self._error(client, order_id, duplicate_id(order_id))
            return
        self._highest[client] = order_id
        self.gateway.next_order_id = max(self.gateway.next_order_id, order_id + 1)
        inst = self._instrument(placed)
        if inst is None:
            return
        order = replace(order, con_id=inst.con_id, perm_id=next(self._perm_ids))
        try:
            work = self._prepare(Work(order, inst), placed.fa_profile)
        except Refused as refusal:
            self._refuse(order, refusal.reject)
            return
        if order.transmit:
            self._transmit(work)
            self.evaluate()
        else:
            self.held[order.perm_id] = work

    def cancel(self, client_id: int, order_id: int) -> None:
        """cancelOrder: the client's own order, live or held; 10147 / 10148 otherwise."""
        order = self._find(client_id, order_id)
        if order is None:
            text = f"OrderId {order_id} that needs to be cancelled is not found."
            self._error(client_id, order_id, Reject(10147, text))
        elif order.done:
            text = f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: "
            self._error(client_id, order_id, Reject(10148, f"{text}{order.status}."))
        else:
            self._finish(self._work_of(order), CANCELLED)

    def cancel_all(self) -> None:
        """reqGlobalCancel: every open order of every client, held ones too."""
        for order in [*(w.order for w in self.held.values()), *self.book.open_orders]:
            if self._is_live(order.perm_id):  # not cancelled with its parent meanwhile
                self._finish(self._work_of(order), CANCELLED)

    # ----------------------------------------------------------------- evaluation
    def evaluate(self) -> None:
        """Work every live order once at the gateway's now."""
        now = self.now()
        for work in list(self.working.values()):
            if work.order.perm_id in self.working:  # an earlier fill may have cancelled it
                self._step(work, now)

    def _step(self, work: Work, t: int) -> None:
        o, inst = work.order, work.inst
        if o.parent_perm_id and not self._parent_filled(o):
            return
        if work.close_at is not None:
            self._auction(work, t)
            return
        if work.expires_at is not None and t >= work.expires_at:
            self._finish(work, f"{CANCELLED}The {o.tif} order expired at the end of its session.")
            return
        assert inst is not None  # every order the engine works has its instrument
        opens, closes = market_hours(inst, t, _rth_only(o))
        if not opens <= t < closes:
            if o.tif in ("IOC", "FOK"):
                self._finish(work, f"{CANCELLED}The market is closed for this {o.tif} order.")
            return
        quote, tick, terms = quote_at(inst, t), inst.min_tick, work.terms
        if o.order_type in matching.TRIGGERED and not work.triggered:
            if o.order_type in matching.TRAILING:
                work.stop = matching.trail(terms, work.stop, quote, tick)
                self._store(work, replace(o, trail_stop_price=work.stop))
            if not matching.triggered(work.terms, work.stop, quote):
                return
            work.triggered = True
        if work.order.status != "Submitted":
            self._update(work, status="Submitted")
        self._match(work, quote, t)
        o = work.order
        if o.done:
            return
        if work.window is not None and t >= work.window[1] and not work.past_end:
            self._finish(work, f"{CANCELLED}The {o.algo_strategy} order reached its end time.")
        elif o.tif in ("IOC", "FOK"):
            self._finish(work, f"{CANCELLED}The {o.tif} order was not filled at once.")

    def _match(self, work: Work, quote: Quote, t: int) -> None:
        o, inst, terms = work.order, work.inst, work.terms
        assert inst is not None
        tick = inst.min_tick
        wanted = o.remaining
        if work.window is not None:
            start, end = work.window
            wanted = min(wanted, matching.due(o.quantity, start, end, t) - o.filled)
        if wanted <= 0:
            return
        working_as, limit = matching.elected(terms, work.stop, tick)
        found = matching.match(terms, working_as, limit, quote, tick)
        if found is None:
            return
        second, used = self._taken.get((o.con_id, found.pool), (t, 0.0))
        size = min(wanted, found.size - (used if second == t else 0.0))
        if size <= 0 or (o.tif == "FOK" and size < o.remaining):
            return
        self._taken[(o.con_id, found.pool)] = (t, (used if second == t else 0.0) + size)
        self._fill(work, size, found.price, t)

    def _auction(self, work: Work, t: int) -> None:
        """MOC / LOC: Submitted once the session is open, executed at its close."""
        o, inst = work.order, work.inst
        assert inst is not None and work.close_at is not None
        if t < work.close_at:
            opens, _ = market_hours(inst, t, True)
            if opens <= t and o.status != "Submitted":
                self._update(work, status="Submitted")
            return
        close = quote_at(inst, work.close_at - 1).last
        if matching.auction(work.terms, close):
            self._fill(work, o.remaining, close, work.close_at)
        else:
            self._finish(work, f"{CANCELLED}The close printed outside the LOC order's limit.")

    # ----------------------------------------------------------------- fills
    def _fill(self, work: Work, size: float, price: float, t: int) -> None:
        o = work.order
        if work.targets:
            outstanding = {a: q - work.allocated.get(a, 0.0) for a, q in work.targets.items()}
            parts = allocation.allocate(size, outstanding)
        else:
            parts = {o.account: size}
        booked = [
            self._execute(work, account, shares, price, t)
            for account, shares in parts.items()
            if shares > 0
        ]
        filled = o.filled + size
        average = round((o.avg_fill_price * o.filled + price * size) / filled, 10)
        done = filled >= o.quantity - 1e-9
        self._update(
            work, filled=filled, avg_fill_price=average, last_fill_price=price,
            status="Filled" if done else "Submitted",
        )  # fmt: skip
        for ex in booked:
            if ex.commission_delay > 0:
                asyncio.get_running_loop().call_later(ex.commission_delay, self._late, ex.exec_id)
            else:
                self._tell(ex.client_id, lambda s, ex=ex: trades.commission_fields(ex))
        self._one_cancels_all(work, size)

    def _execute(self, work: Work, account: str, shares: float, price: float, t: int) -> Execution:
        """Book one fill in one account and send its execDetails."""
        o, inst = work.order, work.inst
        assert inst is not None
        exec_id = self._exec_id(t)
        late = zlib.crc32(exec_id.encode()) % LATE_EVERY == 0
        ex = self.book.record_fill(
            Execution(
                exec_id=exec_id, account=account, con_id=o.con_id, side=trades.SIDES[o.action],
                shares=shares, price=price, time=datetime.fromtimestamp(t, UTC),
                order_id=o.order_id, perm_id=o.perm_id, client_id=o.client_id,
                order_ref=o.order_ref, exchange=_exchange(inst),
                commission=self.gateway.config.commissions.charge(
                    inst.sec_type, shares, price, multiplier(inst)
                ),
                commission_currency=inst.currency,
                commission_delay=self.gateway.config.late_commission if late else 0.0,
            ),
            inst,
        )  # fmt: skip
        if account in work.targets:
            work.allocated[account] = work.allocated.get(account, 0.0) + shares
        cum_shares, cum_value = work.fills.get(account, (0.0, 0.0))
        cum = (cum_shares + shares, cum_value + shares * price)
        work.fills[account] = cum
        average = round(cum[1] / cum[0], 10)
        self._tell(
            o.client_id,
            lambda s: trades.exec_details_fields(-1, ex, inst, (cum[0], average), s.server_version),
        )
        return ex

    def _late(self, exec_id: str) -> None:
        """A late commission report: known from now on, and sent to the placing client."""
        ex = next((e for e in self.book.executions if e.exec_id == exec_id), None)
        if ex is not None:
            ex = replace(ex, commission_delay=0.0)
            self.book.put_execution(ex)
            self._tell(ex.client_id, lambda s: trades.commission_fields(ex))

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

    def _one_cancels_all(self, work: Work, size: float) -> None:
        """A fill in an OCA group (or a bracket's child) cancels (ocaType 1) or reduces
        (2, 3, and a bracket's other children) the group's other orders."""
        o = work.order
        for peer in list(self.working.values()):
            p = peer.order
            same_group = bool(o.oca_group) and p.oca_group == o.oca_group
            siblings = bool(o.parent_perm_id) and p.parent_perm_id == o.parent_perm_id
            if peer is work or p.done or not (same_group or siblings):
                continue
            if same_group and o.oca_type in (0, 1):
                self._finish(peer, f"{CANCELLED}Another order of OCA group {o.oca_group} filled.")
            elif p.quantity - size <= p.filled + 1e-9:
                self._finish(peer, f"{CANCELLED}The order's OCA peer filled its quantity.")
            else:
                self._update(peer, quantity=p.quantity - size)

    # ----------------------------------------------------------------- placing
    def _instrument(self, placed: Placed) -> Instrument | None:
        o = placed.order
        found = self.gateway.catalog.find(placed.contract)
        if len(found) == 1:
            return found[0]
        error = errors.NO_SECURITY if not found else errors.ambiguous(placed.contract.symbol)
        self._error(o.client_id, o.order_id, Reject(error.code, error.text))
        return None

    def _prepare(self, work: Work, fa_profile: str) -> Work:
        """Check the order and plan it: FA targets, account, expiry, algo window, auction."""
        o, inst, now = work.order, work.inst, self.now()
        assert inst is not None
        reject = matching.check(work.terms, inst.min_tick)
        if reject is not None:
            raise Refused(reject)
        if inst.sec_type == "IND":
            raise Refused(rejected("An index cannot be traded: trade its futures or an ETF on it."))
        if inst.expired(self.gateway.clock.now()):
            raise Refused(rejected(f"The contract {inst.local_symbol} has expired."))
        work.targets = self._targets(o, fa_profile)
        if not o.account and not self.book.master:
            work.order = replace(o, account=self.book.accounts[0].id)
        self._schedule(work, now)
        return work

    def _schedule(self, work: Work, now: int) -> None:
        """When the order may work: its expiry, its auction, its algo's window."""
        o, inst = work.order, work.inst
        assert inst is not None
        work.expires_at = matching.expiry(o.tif, o.good_till_date, inst, now, _rth_only(o))
        auction = o.order_type in matching.AUCTION
        work.close_at = matching.auction_close(inst, now) if auction else None
        work.window, work.past_end = matching.algo_window(
            o.algo_strategy, dict(o.algo_params), inst, now, self.gateway.config.algo_span
        )

    def _targets(self, o: Order, fa_profile: str) -> dict[str, float]:
        book, name = self.book, o.fa_group or fa_profile
        if name:
            if not book.master:
                raise Refused(rejected(
                    f"The allocation {name} needs a Financial Advisor login, and this login is the "
                    "single account's: leave faGroup empty."
                ))  # fmt: skip
            return allocation.split(o.quantity, self._fa_weights(o, name))
        if book.master and o.account in ("", book.master, f"{book.master}A"):
            raise Refused(MUST_ALLOCATE)
        if o.account and o.account not in (a.id for a in book.accounts):
            raise Refused(rejected(f"The account {o.account} is not one of this login's accounts."))
        return {}

    def _fa_weights(self, o: Order, name: str) -> dict[str, float]:
        try:
            group = next((g for g in self.book.groups if g.name == name), None)
            if group is not None:
                method = o.fa_method or group.method
                return allocation.weights(
                    group, method, self._figure(group.accounts, "NetLiquidation"),
                    self._figure(group.accounts, "AvailableFunds"),
                )  # fmt: skip
            profile = next((p for p in self.book.profiles if p.name == name), None)
            if profile is not None:
                return allocation.profile_weights(profile)
        except allocation.AllocationError as exc:
            raise Refused(rejected(str(exc))) from None
        raise Refused(rejected(
            f"The FA group or profile {name} does not exist: use one that requestFA lists."
        ))  # fmt: skip

    def _figure(self, accounts, key: str) -> dict[str, float]:
        now, out = self.gateway.clock.now(), {}
        for account in accounts:
            values = valuation.account_values(self.book, self.gateway.catalog, now, account)
            out[account] = float(next(v.value for v in values if v.key == key))
        return out

    def _transmit(self, work: Work) -> None:
        """Send on an order and its bracket: the held parent and the held siblings."""
        o = work.order
        root = o.parent_id or o.order_id
        chain = [w for w in self.held.values() if w.order.client_id == o.client_id and (
            w.order.order_id == root or w.order.parent_id == root)]  # fmt: skip
        for member in sorted([*chain, work], key=lambda w: w.order.order_id):
            self.held.pop(member.order.perm_id, None)
            self._start(member)

    def _start(self, work: Work) -> None:
        o, inst, now = work.order, work.inst, self.now()
        assert inst is not None
        if o.parent_id:
            parent = self._find(o.client_id, o.parent_id)
            work.order = o = replace(o, parent_perm_id=parent.perm_id if parent else 0)
        if o.outside_rth and _rth_only(o):
            self._error(
                o.client_id, o.order_id, Reject(OUTSIDE_RTH_IGNORED.code, OUTSIDE_RTH_IGNORED.text)
            )
        opens, _ = market_hours(inst, now, _rth_only(o))
        if opens > now and o.order_type not in matching.AUCTION:
            self._error(o.client_id, o.order_id, _waits(o, inst, opens))
        self.working[o.perm_id] = work
        self._update(work, status="PreSubmitted")

    def _modify(self, current: Order, placed: Placed) -> None:
        new = placed.order
        mismatch = new.action != current.action or (
            placed.contract.con_id not in (0, current.con_id)
        )
        work = self._work_of(current)
        tick = work.inst.min_tick if work.inst is not None else 0.01
        changed = replace(
            current, quantity=new.quantity, order_type=new.order_type,
            limit_price=new.limit_price, aux_price=new.aux_price, tif=new.tif,
            order_ref=new.order_ref, outside_rth=new.outside_rth, oca_group=new.oca_group,
            oca_type=new.oca_type, good_till_date=new.good_till_date,
            trail_stop_price=new.trail_stop_price, trailing_percent=new.trailing_percent,
            lmt_price_offset=new.lmt_price_offset, algo_strategy=new.algo_strategy,
            algo_params=new.algo_params, transmit=new.transmit,
        )  # fmt: skip
        trailing = (new.aux_price, new.trailing_percent) != (
            current.aux_price,
            current.trailing_percent,
        )
        probe = Work(changed, work.inst, stop=None if trailing else work.stop)
        reject = matching.check(probe.terms, tick)
        if mismatch or new.quantity <= current.filled or reject is not None:
            refusal = reject if reject is not None else MISMATCH
            code = 110 if refusal.code == 110 else 105
            self._error(current.client_id, current.order_id, Reject(code, refusal.text))
            return
        work.order, work.stop = changed, probe.stop
        if work.inst is not None and (
            current.perm_id in self.working or current.perm_id in self.held
        ):
            try:
                self._schedule(work, self.now())
            except Refused as refusal:
                work.order = current
                self._error(current.client_id, current.order_id, Reject(105, refusal.reject.text))
                return
        if current.perm_id in self.held:
            if changed.transmit:
                self._transmit(work)
        else:
            self._update(work)
        self.evaluate()

    def _what_if(self, placed: Placed) -> None:
        """whatIf: one openOrder (whatIf 1, PreSubmitted) with the margin and commission the
        order would add; nothing is placed."""
        o = placed.order
        inst = self._instrument(placed)
        if inst is None:
            return
        work = Work(replace(o, con_id=inst.con_id), inst)
        try:
            self._prepare(work, placed.fa_profile)
        except Refused as refusal:
            self._error(o.client_id, o.order_id, refusal.reject)
            return
        accounts = list(work.targets) or [work.order.account]
        quote = quote_at(inst, self.now())
        price = (
            o.limit_price if o.limit_price > 0 else (quote.ask if o.action == "BUY" else quote.bid)
        )
        notional = o.quantity * price * multiplier(inst)
        side = 1 if o.action == "BUY" else -1
        fallback = self.gateway.config.what_if_margin
        rate_init, rate_maint = valuation.MARGIN_RATES.get(
            (inst.sec_type, side), (fallback, fallback)
        )
        before = [
            sum(self._figure(accounts, key).values())
            for key in ("InitMarginReq", "MaintMarginReq", "EquityWithLoanValue")
        ]
        commission = self.gateway.config.commissions.charge(
            inst.sec_type, o.quantity, price, multiplier(inst)
        )
        change = [notional * rate_init, notional * rate_maint, -commission]
        after = [b + c for b, c in zip(before, change, strict=True)]
        preview = tuple(round(x, 2) for x in (*before, *change, *after, *(commission,) * 3))
        answer = replace(work.order, status="PreSubmitted", preview=preview)
        self._tell(o.client_id, lambda s: trades.open_order_fields(answer, inst, s.server_version))

    def _refuse(self, order: Order, reject: Reject) -> None:
        """A refused order: the error, then openOrder + orderStatus Inactive; it is completed."""
        self._error(order.client_id, order.order_id, reject)
        inst = self.gateway.catalog.by_con_id(order.con_id)
        dead = replace(order, status="Inactive", completed_time=self._stamp())
        self.book.put_order(dead)
        self._announce(dead, inst)

    # ----------------------------------------------------------------- state
    def _update(self, work: Work, **changes) -> None:
        """Change an order, store it in the Book and announce it to its client."""
        order = replace(work.order, **changes)
        if order.done and not order.completed_time:
            order = replace(order, completed_time=self._stamp())
        work.order = order
        if order.done:
            self.working.pop(order.perm_id, None)
            self.held.pop(order.perm_id, None)
        if order.perm_id not in self.held:
            self.book.put_order(order)
            self._announce(order, work.inst)

    def _store(self, work: Work, order: Order) -> None:
        """Change an order without news (a trailing stop that moved)."""
        work.order = order
        self.book.put_order(order)

    def _finish(self, work: Work, text: str, code: int = 202) -> None:
        """Cancel an order (and its children): orderStatus Cancelled, then the error."""
        was_held = work.order.perm_id in self.held
        self.held.pop(work.order.perm_id, None)
        order = replace(work.order, status="Cancelled", completed_time=self._stamp())
        work.order = order
        self.working.pop(order.perm_id, None)
        if was_held:  # never sent on: only the client knows it
            self._tell(order.client_id, lambda s: trades.order_status_fields(order))
        else:
            self.book.put_order(order)
            self._announce(order, work.inst)
        self._error(order.client_id, order.order_id, Reject(code, text))
        for child in [*self.working.values(), *self.held.values()]:
            if child.order.parent_perm_id == order.perm_id or (
                child.order.client_id == order.client_id
                and child.order.parent_id == order.order_id
                and child.order.perm_id in self.held
            ):
                self._finish(child, f"{CANCELLED}Its parent order was cancelled.")

    def _announce(self, order: Order, inst: Instrument | None) -> None:
        self._tell(
            order.client_id, lambda s: trades.open_order_fields(order, inst, s.server_version)
        )
        self._tell(order.client_id, lambda s: trades.order_status_fields(order))

    def _error(self, client_id: int, order_id: int, reject: Reject) -> None:
        self._tell(client_id, lambda s: [4, 2, order_id, reject.code, reject.text, ""])

    def _tell(self, client_id: int, fields: Callable[[ClientSession], list[object]]) -> None:
        """News for the client's current session, if it is connected (held while IB's link is
        down, by `ClientSession.notify`)."""
        session = self.gateway.clients.get(client_id)
        if session is not None:
            session.notify(*fields(session))

    def _stamp(self) -> str:
        return f"{self.gateway.clock.now().astimezone(TWS_ZONE):%Y%m%d %H:%M:%S} America/New_York"

    # ----------------------------------------------------------------- lookups
    def _find(self, client_id: int, order_id: int) -> Order | None:
        """The client's order with this id: held, open or completed (the latest)."""
        for work in self.held.values():
            if (work.order.client_id, work.order.order_id) == (client_id, order_id):
                return work.order
        for order in (*self.book.open_orders, *reversed(self.book.completed_orders)):
            if (order.client_id, order.order_id) == (client_id, order_id):
                return order
        return None

    def _work_of(self, order: Order) -> Work:
        """The engine's Work for an order, or a passing one for an order it does not work."""
        found = self.working.get(order.perm_id) or self.held.get(order.perm_id)
        if found is not None:
            return found
        return Work(order, self.gateway.catalog.by_con_id(order.con_id))

    def _is_live(self, perm_id: int) -> bool:
        return perm_id in self.held or any(o.perm_id == perm_id for o in self.book.open_orders)

    def _parent_filled(self, order: Order) -> bool:
        if order.parent_perm_id in self.working:
            return False
        parent = next(
            (o for o in self.book.completed_orders if o.perm_id == order.parent_perm_id), None
        )
        return parent is not None and parent.status == "Filled"


def _rth_only(order: Order) -> bool:
    """Whether the order waits for regular hours: without outsideRth, or of a type IB does not
    let work outside them (MKT, stops, algos)."""
    return not (
        order.outside_rth and order.order_type in matching.OUTSIDE_RTH and not order.algo_strategy
    )


def _finished(order: Order) -> Reject:
    if order.status == "Filled":
        return Reject(104, f"Can't modify a filled order: order {order.order_id} is filled.")
    return Reject(
        104, f"Can't modify order {order.order_id}: it is {order.status}; place a new order."
    )


def _waits(order: Order, inst: Instrument, opens: int) -> Reject:
    venue = VENUES[inst.venue]
    when = datetime.fromtimestamp(opens, ZoneInfo(venue.tz))
    return Reject(399, (
        f"Order Message: {order.action} {trades._qty(order.quantity)} {inst.local_symbol} "
        f"{inst.exchange} Warning: your order will not be placed at the exchange until "
        f"{when:%Y-%m-%d %H:%M:%S} {venue.ib_tz}"
    ))  # fmt: skip


def _exchange(inst: Instrument) -> str:
    """Where a fill is reported: ISLAND for stocks, the listing exchange for the rest."""
    if inst.sec_type == "STK":
        return "ISLAND"
    return (
        inst.primary_exchange
        if inst.exchange == "SMART" and inst.primary_exchange
        else inst.exchange
    )
