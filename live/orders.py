"""The order manager: the only code that sends orders, and the journal's link to the gateway.

Why the journal comes first: an intent is marked `sending` with its order id and committed
BEFORE `placeOrder`, so a crash at any instant leaves either an intent that was never sent
(`new`) or one that reconciliation can look up by its key (the orderRef IB keeps) and adopt. A
restarted service therefore never sends an order twice and never loses one. Every state
change, fill and commission ib_async reports is written to the journal as it arrives; a sweep
of ib_async's fills on every pump catches any that no event announced (commissions that come
late for fills known only from reqExecutions). Nothing is sent until `reconcile` has run on
the current connection, and nothing is sent, new order or change to one, that has not passed
`live.safety.check` under the service's current limits and mode, nor (with a `RiskGuard`) an
order on a blocked account or one that would take its account past a risk limit (`live.risk`).

The service calls `attach` once, `reconcile` after every (re)connect, `pump` every ~100 ms
while connected, and `export` now and then; users write intents through `live.api`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from ib_async import IB, Contract, Fill, Order, Trade
from ib_async.util import UNSET_DOUBLE

from ibkr import errors
from live import reconcile as rec
from live.export import export_journal
from live.intents import OrderIntent
from live.journal import IntentRow, Journal
from live.risk import RiskGuard
from live.safety import OrderLimits, OrderRefused, TradingMode, check, order_price, quote_price

log = logging.getLogger("ibw.live.orders")
DETAILS_TIMEOUT = 10.0
SNAPSHOT_TIMEOUT = 12.0  # IB completes a market-data snapshot within about 11 s
SWEEP_EVERY = 1.0  # seconds between walks over ib_async's fills for any no event announced
WARNINGS = frozenset({105, 110, 165, 321, 329, 399, 404, 434, 492, 10167, 2109, 2137})
DEAD_ON_ARRIVAL = frozenset({103})  # the gateway refused the id: the order never existed
MODIFY_FAILED = frozenset({104, 105, 110, 321, 329, 2102})
CANCEL_FAILED = frozenset({135, 161, 10147, 10148})


class OrderManager:
    """Sends journaled intents, journals everything the gateway says about them (see module)."""

    def __init__(
        self,
        ib: IB,
        journal: Journal,
        limits: OrderLimits,
        mode: TradingMode,
        reference_price: Callable[[int], float | None],
        risk: RiskGuard | None = None,
    ) -> None:
        self.ib = ib
        self.journal = journal
        self.limits = limits
        self.mode = mode
        self.reference_price = reference_price
        self.risk = risk
        self.reconciled = False  # on the current connection; nothing is sent before
        # Held by a reconcile and by a pump: a reconcile waits for a send in flight, so an
        # order placed after its snapshot is never taken for one the gateway lost.
        self._busy = asyncio.Lock()
        self._local_status = False  # ib_async's own status guesses (cancelOrder) are not IB's
        self._contracts: dict[int, Contract] = {}  # by conId, from IB's contract details
        self._session_reset()

    def _session_reset(self) -> None:
        """What was sent on a connection is forgotten with it; the journal remembers the rest."""
        self._modifies_sent: dict[str, str] = {}
        self._cancels_sent: set[str] = set()
        self._fills_seen: set[str] = set()
        self._next_sweep = 0.0
        self._commissions_done: set[str] = set()

    # ---- ib_async events ------------------------------------------------------------------

    def attach(self) -> None:
        ib = self.ib
        ib.openOrderEvent += self._on_open_order
        ib.orderStatusEvent += self._on_status
        ib.execDetailsEvent += self._on_fill
        ib.commissionReportEvent += self._on_commission
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected

    def detach(self) -> None:
        ib = self.ib
        ib.openOrderEvent -= self._on_open_order
        ib.orderStatusEvent -= self._on_status
        ib.execDetailsEvent -= self._on_fill
        ib.commissionReportEvent -= self._on_commission
        ib.errorEvent -= self._on_error
        ib.disconnectedEvent -= self._on_disconnected

    def _on_disconnected(self) -> None:
        self.reconciled = False
        self._session_reset()

    def _key(self, order: Order) -> str | None:
        return self.journal.key_for(order.orderRef, order.permId, order.clientId, order.orderId)

    def _on_open_order(self, trade: Trade) -> None:
        key = self._key(trade.order)
        if key is None:
            return
        self.journal.record_status(key, **rec.order_status_args(trade))
        row = self.journal.get(key)
        if row.modification_state == "pending" and rec.holds(trade.order, row):
            self.journal.set_modification_state(key, "applied", _describe(trade.order))

    def _on_status(self, trade: Trade) -> None:
        if self._local_status or (trade.log and trade.log[-1].errorCode):
            return  # ib_async's guess after an error or a cancel; IB's own word follows
        key = self._key(trade.order)
        if key is not None:
            self.journal.record_status(key, **rec.order_status_args(trade))

    def _on_fill(self, trade: Trade, fill: Fill) -> None:
        rec.record_fill(self.journal, fill)
        self._fills_seen.add(fill.execution.execId)

    def _on_commission(self, trade: Trade, fill: Fill, report: object) -> None:
        if rec.record_commission(self.journal, fill):
            self._commissions_done.add(fill.execution.execId)

    def _on_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        if req_id <= 0:
            return
        key = self.journal.key_for("", 0, self.ib.client.clientId, req_id)
        if key is None:
            return
        row = self.journal.get(key)
        sentence = str(errors.from_ib(code, text, subject=f"order {key}"))
        if code in DEAD_ON_ARRIVAL and row.state == "sending" and not row.perm_id:
            self.journal.requeue(key, sentence)
        elif code == 202:
            self.journal.record_status(key, "Cancelled", reason=sentence)
        elif code in MODIFY_FAILED and key in self._modifies_sent:
            del self._modifies_sent[key]
            if code != 2102:  # 2102: still being processed; the next pump tries again
                self.journal.set_modification_state(key, "failed", sentence)
        elif code in CANCEL_FAILED or code in WARNINGS or 2100 <= code < 2200:
            self.journal.note(key, "warning" if code in WARNINGS else "error", sentence)
        elif row.state in ("sending", "working") and row.status in (None, "PendingSubmit"):
            self.journal.record_status(key, "Inactive", reason=sentence, final=True)
        else:
            self.journal.note(key, "error", sentence)

    # ---- reconcile, pump, export ------------------------------------------------------------

    async def reconcile(self) -> rec.Reconciliation:
        """Adopt the gateway's state before anything is sent (see live.reconcile)."""
        self.reconciled = False
        async with self._busy:
            result = await rec.reconcile(self.ib, self.journal)
            self.reconciled = self.ib.isConnected()
            return result

    async def pump(self) -> None:
        """Send new intents, modifications and cancels; journal any fill no event announced."""
        if not self.reconciled or self._busy.locked() or not self.ib.isConnected():
            return
        async with self._busy:
            for request in self.journal.global_cancels_to_send():  # before any new order
                self.ib.reqGlobalCancel()
                self.journal.global_cancel_sent(request)
                for row in self.journal.intents(("working",)):  # covered: no cancel of its own
                    self._cancels_sent.add(row.key)
                log.warning("kill switch: IB's global cancel sent (request %s)", request)
            for row in self.journal.intents(("new",)):
                await self._send(row)
            for row in self.journal.intents(("working",)):
                if row.cancel_requested:
                    self._cancel(row)
                elif row.modification_state == "pending":
                    await self._modify(row)
            if time.monotonic() >= self._next_sweep:  # a walk over all of today's fills
                self._next_sweep = time.monotonic() + SWEEP_EVERY
                self._sweep_fills()

    def export(self, home: Path) -> None:
        """The journal's orders, fills and differences into the warehouse (any thread)."""
        with Journal(self.journal.path) as journal:
            export_journal(journal, home)

    # ---- sending ---------------------------------------------------------------------------

    async def _send(self, row: IntentRow) -> None:
        key, intent = row.key, row.effective
        if row.cancel_requested:
            self.journal.finish(key, "cancelled before it was sent")
            return
        parent_id = 0
        if intent.parent_key:
            parent = self.journal.get(intent.parent_key)
            if parent.state == "new":
                return  # the parent goes first
            if parent.state in ("refused", "done") or not parent.order_id:
                self._refuse(key, f"its parent order {parent.key} is {parent.state}", "")
                return
            parent_id = parent.order_id
        if not await self._passes_checks(key, intent, self.journal.refuse, intent):
            return
        client_id = self.ib.client.clientId
        order_id = self.ib.client.getReqId()
        self.journal.mark_sending(key, order_id, client_id)
        self.ib.placeOrder(intent.to_contract(), intent.to_order(order_id, parent_id))

    async def _passes_checks(
        self,
        key: str,
        intent: OrderIntent,
        refuse: Callable[[str, str], None],
        risked: OrderIntent | None,
    ) -> bool:
        """The pre-trade checks every order and every change to one passes before it is sent,
        under the service's current limits and mode; `refuse(key, reason)` journals a refusal.
        `risked` is what the risk guard judges (a change that adds nothing: None, it passes).
        False also while the contract's details or the account's figures are not in, or the
        connection changed."""
        try:
            contract = await self._contract(intent.con_id)
            multiplier = float(contract.multiplier or 1) or 1.0
            price = self.reference_price(intent.con_id)
            if price is None and order_price(intent, None) is None:
                price = await self._snapshot_price(contract)
            check(intent, self.ib.managedAccounts(), price, self.limits, self.mode, multiplier)
        except OrderRefused as exc:
            refuse(key, str(exc))
            log.warning("%s", exc)
            return False
        except (TimeoutError, ConnectionError):
            return False  # no answer about the contract yet: the next pump tries again
        if self.risk is not None and risked is not None:
            unit = order_price(risked, price)
            sentence = self.risk.refusal(risked, unit * multiplier if unit else None)
            if sentence is not None:
                refuse(key, sentence)
                log.warning("%s", sentence)
                return False
            if not self.risk.knows(risked.account):
                return False  # its positions are not in yet: the next pump tries again
        return self.reconciled and self.ib.isConnected()  # the connection may have changed

    def _refuse(self, key: str, cause: str, fix: str) -> None:
        refused = OrderRefused(
            cause, fix or "submit it again under a new key", subject=f"order {key}"
        )
        self.journal.refuse(key, str(refused))
        log.warning("%s", refused)

    async def _contract(self, con_id: int) -> Contract:
        """The contract as IB describes it (its multiplier, its exchange for a quote); an
        unknown conId is refused."""
        if con_id not in self._contracts:
            details = await asyncio.wait_for(
                self.ib.reqContractDetailsAsync(Contract(conId=con_id)), DETAILS_TIMEOUT
            )
            if not details:
                raise OrderRefused(
                    f"IB knows no contract with conId {con_id}", "check the conId", code=200
                )
            self._contracts[con_id] = details[0].contract
        return self._contracts[con_id]

    async def _snapshot_price(self, contract: Contract) -> float | None:
        """One snapshot quote for an order that names no price on a contract no stream has
        quoted yet (orders flow before the streams are set up): its notional is checked at
        it. None when IB sends no price in time; the check then refuses the order."""
        try:
            tickers = await asyncio.wait_for(self.ib.reqTickersAsync(contract), SNAPSHOT_TIMEOUT)
        except TimeoutError:
            return None
        return quote_price(tickers[0].bid, tickers[0].ask, tickers[0].last) if tickers else None

    async def _modify(self, row: IntentRow) -> None:
        """A modification is a new intent for safety: refused, it fails and nothing is sent. The
        risk guard judges only one that adds to the quantity the gateway holds, and only what
        is left to fill of it (the fills are in the account's positions already)."""
        wanted = repr(sorted((row.modification or {}).items()))
        if self._modifies_sent.get(row.key) == wanted:
            return
        if row.client_id != self.ib.client.clientId:
            self.journal.set_modification_state(
                row.key, "failed", f"placed by client {row.client_id}; only it can modify it"
            )
            return
        trade = self.ib.wrapper.trades.get((row.client_id, row.order_id))
        if trade is not None and trade.isDone():
            return  # its final status is on the way
        intent = row.effective
        held = trade.order.totalQuantity if trade is not None else row.intent.quantity
        left = intent.quantity - (row.filled or 0.0)
        risked = intent.modified(quantity=left) if intent.quantity > held else None
        if not await self._passes_checks(row.key, intent, self._fail_modification, risked):
            return
        parent = self.journal.find(intent.parent_key) if intent.parent_key else None
        order = intent.to_order(row.order_id, parent.order_id or 0 if parent else 0)
        order.permId = row.perm_id or 0
        self._modifies_sent[row.key] = wanted
        self.journal.note(row.key, "modify sent", _describe(order))
        self.ib.placeOrder(intent.to_contract(), order)

    def _fail_modification(self, key: str, reason: str) -> None:
        self.journal.set_modification_state(key, "failed", reason)

    def _cancel(self, row: IntentRow) -> None:
        if row.key in self._cancels_sent:
            return
        self._cancels_sent.add(row.key)
        trade = self.ib.wrapper.trades.get((row.client_id, row.order_id))
        order = (
            trade.order
            if trade is not None
            else Order(orderId=row.order_id, clientId=row.client_id, permId=row.perm_id or 0)
        )
        self.journal.note(row.key, "cancel sent", f"order id {row.order_id}")
        self._local_status = True
        try:
            self.ib.cancelOrder(order)
        finally:
            self._local_status = False

    def _sweep_fills(self) -> None:
        """Fills and late commissions ib_async holds but announced to no handler."""
        for fill in self.ib.fills():
            exec_id = fill.execution.execId
            if exec_id not in self._fills_seen:
                rec.record_fill(self.journal, fill)
                self._fills_seen.add(exec_id)
            elif exec_id in self._commissions_done or fill.commissionReport.execId != exec_id:
                continue
            if rec.record_commission(self.journal, fill):
                self._commissions_done.add(exec_id)


def _describe(order: Order) -> str:
    prices = [
        f"{name} {value:g}"
        for name, value in (("limit", order.lmtPrice), ("aux", order.auxPrice))
        if value not in (None, UNSET_DOUBLE, 0)
    ]
    return " ".join([f"{order.action} {order.totalQuantity:g} {order.orderType}", *prices])
