"""Reconciliation: after every (re)connect, the gateway's word is folded into the journal.

Why before anything is sent: an intent left in `sending` by a crash may or may not have reached
the gateway. Asking for open orders, today's completed orders and executions settles it: an
order carrying the intent's key (orderRef) or permId is adopted and never sent again; an intent
the gateway does not know never arrived and goes back to `new`. Fills are upserted by execId
(fills made while the service was away are recorded exactly once), commissions joined, and
anything the two sides disagree on (orders and fills the journal does not know, working orders
the gateway lost, positions that do not add up) becomes a difference: logged, journaled,
returned, never papered over.

Positions: expected = the gateway's positions at the journal's first reconcile (the baseline)
plus the net of every execution journaled since, per (account, conId), corrections counted once.
Fills keep coming while positions are asked for, so the positions are taken between two
execution snapshots that agree, and compared with exactly the fills they hold.
Also the ib_async -> journal translations the order manager shares (`record_fill`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC
from typing import TypeVar

from ib_async import IB, Fill, Order, Position, Trade
from ib_async.util import UNSET_DOUBLE

from ibkr.errors import RequestTimeout
from live.journal import IntentRow, Journal
from live.ledger import ExecutionRecord, ExecutionRow, exec_revision, now_text

log = logging.getLogger("ibw.live.orders")
T = TypeVar("T")
REQUEST_TIMEOUT = 30.0
POSITION_TOLERANCE = 1e-6
SETTLE_SECONDS = 0.2  # between tries at a position snapshot no fill races
POSITION_TRIES = 5


@dataclass
class Difference:
    kind: str  # unknown_order, fill_without_intent, order_missing, position
    subject: str
    detail: str
    key: str | None = None
    account: str | None = None
    con_id: int | None = None


@dataclass
class Reconciliation:
    """What one reconcile did: intents adopted or requeued, fills new to the journal."""

    adopted: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    new_fills: int = 0
    differences: list[Difference] = field(default_factory=list)


def _number(value: float | None) -> float | None:
    """IB's "unset" (Double.MAX_VALUE) and missing values are None, not a number."""
    return None if value is None or value == UNSET_DOUBLE else float(value)


def record_fill(journal: Journal, fill: Fill) -> tuple[str | None, bool]:
    """Journal one ib_async Fill and its commission if known: (its intent key, was it new)."""
    ex = fill.execution
    key = journal.key_for(ex.orderRef, ex.permId, ex.clientId, ex.orderId)
    rec = ExecutionRecord(
        exec_id=ex.execId,
        account=ex.acctNumber,
        con_id=fill.contract.conId,
        side=ex.side,
        shares=float(ex.shares),
        price=float(ex.price),
        time=ex.time.astimezone(UTC),
        order_id=ex.orderId,
        perm_id=ex.permId,
        client_id=ex.clientId,
        order_ref=ex.orderRef,
    )
    new = journal.record_execution(rec, key)
    record_commission(journal, fill)
    return key, new


def record_commission(journal: Journal, fill: Fill) -> bool:
    """True once the fill's commission is in the journal (False: IB has not reported it)."""
    report = fill.commissionReport
    commission = _number(report.commission)
    if report.execId != fill.execution.execId or commission is None:
        return False
    journal.record_commission(
        report.execId, commission, report.currency, _number(report.realizedPNL)
    )
    return True


def order_status_args(trade: Trade) -> dict:
    """The journal's record_status keyword arguments for an ib_async Trade."""
    st, order = trade.orderStatus, trade.order
    filled = st.filled or _number(order.filledQuantity) or 0.0
    return {
        "status": st.status,
        "filled": _number(filled),
        "remaining": _number(st.remaining) if st.status else None,
        "avg_fill_price": _number(st.avgFillPrice) or None,
        "order_id": order.orderId,
        "client_id": order.clientId,
        "perm_id": st.permId or order.permId,
    }


def holds(order: Order, row: IntentRow) -> bool:
    """Does the gateway's order carry the modification the journal asks for?"""
    wanted = row.modification or {}
    have = {
        "quantity": order.totalQuantity,
        "limit_price": order.lmtPrice,
        "aux_price": order.auxPrice,
    }
    return all(
        have[k] not in (None, UNSET_DOUBLE) and abs(float(have[k]) - v) < 1e-9
        for k, v in wanted.items()
    )


async def _ask(coro: Awaitable[T], what: str) -> T:
    try:
        return await asyncio.wait_for(coro, REQUEST_TIMEOUT)
    except TimeoutError as exc:
        raise RequestTimeout.after(REQUEST_TIMEOUT, f"reconciling {what}") from exc


async def reconcile(ib: IB, journal: Journal) -> Reconciliation:
    """Fold the gateway's orders, executions and positions into the journal (see module doc)."""
    result = Reconciliation()
    ib.client.updateReqId(journal.max_order_id(ib.client.clientId) + 1)
    open_trades = await _ask(ib.reqAllOpenOrdersAsync(), "open orders")
    completed = await _ask(ib.reqCompletedOrdersAsync(False), "completed orders")
    fills = await _ask(ib.reqExecutionsAsync(), "executions")

    filled_keys: dict[str, float] = defaultdict(float)
    for fill in fills:
        key, new = record_fill(journal, fill)
        result.new_fills += new
        if key is None:
            ex = fill.execution
            _difference(journal, result, Difference(
                "fill_without_intent", ex.execId,
                f"execution {ex.execId} ({ex.side} {ex.shares:g} @ {ex.price:g}, orderRef "
                f"{ex.orderRef!r}, permId {ex.permId}) belongs to no journaled order",
                account=ex.acctNumber, con_id=fill.contract.conId,
            ))  # fmt: skip
        else:
            filled_keys[key] += fill.execution.shares

    known: dict[str, Trade] = {}
    for trade in [*completed, *open_trades]:  # an open order's state is the newer one
        o = trade.order
        key = journal.key_for(o.orderRef, o.permId, o.clientId, o.orderId)
        if key is None:
            _difference(journal, result, Difference(
                "unknown_order", f"perm {o.permId}",
                f"the gateway holds order permId {o.permId} ({o.action} {o.totalQuantity:g} "
                f"{o.orderType}, orderRef {o.orderRef!r}, {trade.orderStatus.status}) "
                "that the journal does not know",
                account=o.account or None, con_id=trade.contract.conId,
            ))  # fmt: skip
            continue
        known[key] = trade

    for row in journal.intents(("sending", "working", "new")):
        if row.key in known:
            if row.state != "working":
                result.adopted.append(row.key)
            journal.record_status(row.key, **order_status_args(known[row.key]))
            if row.modification_state == "pending" and holds(known[row.key].order, row):
                journal.set_modification_state(row.key, "applied", "found at the gateway")
        elif row.key in filled_keys:
            filled = filled_keys[row.key]
            wanted = row.effective.quantity or filled  # a cash order's size is IB's to know
            status = "Filled" if filled >= wanted else "Submitted"
            if row.state != "working":
                result.adopted.append(row.key)
            journal.record_status(row.key, status, filled=filled)
        elif row.state == "sending":
            journal.requeue(row.key, f"the gateway does not know order id {row.order_id}")
            result.requeued.append(row.key)
        elif row.state == "working":
            _difference(journal, result, Difference(
                "order_missing", row.key,
                f"order {row.key} (order id {row.order_id}, permId {row.perm_id}) is working "
                "in the journal but the gateway does not know it",
                key=row.key, account=row.intent.account or None, con_id=row.intent.con_id,
            ))  # fmt: skip
    await _check_positions(ib, journal, result)
    if result.adopted or result.requeued or result.new_fills:
        log.info(
            "reconciled: %d adopted, %d requeued, %d new fills, %d differences",
            len(result.adopted), len(result.requeued), result.new_fills, len(result.differences),
        )  # fmt: skip
    return result


def expected_positions(
    journal: Journal, leave_out: frozenset[str] = frozenset()
) -> dict[tuple[str, int], float]:
    """Baseline plus the net of executions since, each correction family counted once
    (families with an execution in `leave_out` are not counted)."""
    expected = defaultdict(float, journal.baseline() or {})
    families: dict[str, list[ExecutionRow]] = defaultdict(list)
    for ex in journal.executions():
        families[ex.base_id].append(ex)
    for family in families.values():
        if any(e.exec_id in leave_out for e in family):
            continue
        current = next(e for e in family if e.superseded_by is None)
        counted = [e for e in family if e.in_baseline]
        before = max(counted, key=lambda e: exec_revision(e.exec_id)) if counted else None
        for ex, sign in ((current, 1.0), (before, -1.0)):
            if ex is not None:
                expected[(ex.account, ex.con_id)] += sign * ex.signed_shares
    return dict(expected)


def _position_gaps(
    positions: list[Position], expected: dict[tuple[str, int], float]
) -> dict[tuple[str, int], tuple[float, float]]:
    held = {(p.account, p.contract.conId): float(p.position) for p in positions}
    return {
        k: (held.get(k, 0.0), expected.get(k, 0.0))
        for k in set(held) | set(expected)
        if abs(held.get(k, 0.0) - expected.get(k, 0.0)) > POSITION_TOLERANCE
    }


async def _consistent_positions(
    ib: IB, journal: Journal, result: Reconciliation
) -> tuple[list[Position], frozenset[str]] | None:
    """Positions taken between two execution snapshots that agree, so they hold exactly the
    fills the gateway reported; and the journaled fills that came after them. None when fills
    kept arriving through every try (a busy algo): then nothing can be compared exactly."""
    for _ in range(POSITION_TRIES):
        asked_at = now_text()
        before = await _ask(ib.reqExecutionsAsync(), "executions")
        positions = await _ask(ib.reqPositionsAsync(), "positions")
        after = await _ask(ib.reqExecutionsAsync(), "executions")
        for fill in after:
            result.new_fills += record_fill(journal, fill)[1]
        seen = {f.execution.execId for f in after}
        if {f.execution.execId for f in before} == seen:
            later = frozenset(
                e.exec_id
                for e in journal.executions()
                if e.exec_id not in seen and e.recorded_at >= asked_at
            )
            return positions, later
        await asyncio.sleep(SETTLE_SECONDS)
    return None


async def _check_positions(ib: IB, journal: Journal, result: Reconciliation) -> None:
    taken = await _consistent_positions(ib, journal, result)
    if taken is None:
        log.info("positions not compared: fills kept arriving through %d tries", POSITION_TRIES)
        return
    positions, later = taken
    if journal.baseline() is None:
        journal.set_baseline({(p.account, p.contract.conId): p.position for p in positions})
        return
    gaps = _position_gaps(positions, expected_positions(journal, later))
    for (account, con_id), (held, expected) in sorted(gaps.items()):
        _difference(journal, result, Difference(
            "position", f"{account} {con_id}",
            f"{account} holds {held:g} of conId {con_id} but the journal expects {expected:g}",
            account=account, con_id=con_id,
        ))  # fmt: skip


def _difference(journal: Journal, result: Reconciliation, diff: Difference) -> None:
    log.warning("reconciliation difference: %s", diff.detail)
    journal.record_difference(
        diff.kind, diff.subject, diff.detail, diff.key, diff.account, diff.con_id
    )
    result.differences.append(diff)
