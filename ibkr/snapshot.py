"""One account snapshot through ib_async: positions, account summary and values, portfolio, P&L,
today's executions with their commissions, open and completed orders, the FA configuration.

Owns the order of the requests (IB's account data pages: positions, summary and values,
portfolio, P&L, executions, orders, FA), the waits for data IB streams (account updates one
account at a time, P&L, late commission reports; each bounded) and the rows, as plain dicts, that
the warehouse stores. Corrections: a fill whose execId differs only after the last dot replaces
the earlier one. A commission that has not arrived is None, never 0. May import ib_async,
`ibfacts` (which reads the FA XML) and the standard library.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from ib_async import Fill, Trade

from ibfacts import fa
from ibkr.client import IBClient

UNSET = 1.7976931348623157e308  # IB's Double.MAX: "no value"
COMMISSION_WAIT = 3.0  # seconds to wait for commission reports that come after the fills
PNL_WAIT = 3.0  # seconds to wait for the first P&L of each subscription


@dataclass
class Snapshot:
    """Rows per dataset, every row a dict of the dataset's own columns."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: int = 0

    def rows(self, dataset: str) -> list[dict[str, Any]]:
        return self.tables.setdefault(dataset, [])


def number(value: float | None) -> float | None:
    """IB's 'no value' (Double.MAX, NaN, empty) as None."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    value = float(value)
    return None if value >= UNSET else value


DATASETS = (
    "positions", "account_summary", "account_values", "portfolio", "pnl", "executions",
    "commissions", "open_orders", "completed_orders", "fa_groups", "fa_profiles", "fa_aliases",
)  # fmt: skip


async def take(
    client: IBClient, accounts: list[str], is_fa: bool, wanted: Iterable[str] = DATASETS
) -> Snapshot:
    """The `wanted` datasets (default: all), asked for in IB's recommended order."""
    need = set(wanted).intersection
    snap = Snapshot()
    ib = client.ib
    if need({"positions", "pnl"}):  # P&L per position needs the positions
        for p in await client.call(ib.reqPositionsAsync(), "positions"):
            snap.rows("positions").append(
                {"account": p.account, **_contract(p.contract), "quantity": float(p.position),
                 "avg_cost": float(p.avgCost)}
            )  # fmt: skip
    if need({"account_summary"}):
        for v in await client.call(ib.accountSummaryAsync(), "account summary"):
            snap.rows("account_summary").append(
                {"account": v.account, "tag": v.tag, "value": v.value,
                 "currency": v.currency or None}
            )  # fmt: skip
    if need({"account_values", "portfolio"}):
        await _account_updates(client, accounts, snap)
    if need({"pnl"}):
        await _pnl(client, accounts, snap)
    if need({"executions", "commissions"}):
        answered = await client.call(ib.reqExecutionsAsync(), "today's executions")
        # ib_async attaches commission reports to the fills it keeps (connect already asked
        # for them), not to the copies an answer returns
        fills = [ib.wrapper.fills.get(f.execution.execId, f) for f in answered]
        # commission reports come after the fills, some late: wait a little, the rest stay None
        await _until(lambda: all(f.commissionReport.execId for f in fills), COMMISSION_WAIT)
        _executions(fills, snap)
    if need({"open_orders"}):
        for trade in await client.call(ib.reqAllOpenOrdersAsync(), "open orders"):
            snap.rows("open_orders").append(_order(trade))
    if need({"completed_orders"}):
        for trade in await client.call(ib.reqCompletedOrdersAsync(False), "completed orders"):
            snap.rows("completed_orders").append(_order(trade, completed=True))
    if is_fa and need({"fa_groups", "fa_profiles", "fa_aliases"}):
        await _fa(client, snap)
    snap.requests = client.requests
    return snap


async def _account_updates(client: IBClient, accounts: list[str], snap: Snapshot) -> None:
    ib = client.ib
    for account in accounts:  # one reqAccountUpdates at a time: a new one replaces the last
        await client.call(ib.reqAccountUpdatesAsync(account), f"account values of {account}")
        for v in ib.accountValues(account):
            snap.rows("account_values").append(
                {"account": v.account, "key": v.tag, "value": v.value,
                 "currency": v.currency or None}
            )  # fmt: skip
        for item in ib.portfolio(account):
            snap.rows("portfolio").append(
                {"account": item.account, **_contract(item.contract),
                 "quantity": float(item.position), "market_price": number(item.marketPrice),
                 "market_value": number(item.marketValue), "avg_cost": number(item.averageCost),
                 "unrealized_pnl": number(item.unrealizedPNL),
                 "realized_pnl": number(item.realizedPNL)}
            )  # fmt: skip


async def _pnl(client: IBClient, accounts: list[str], snap: Snapshot) -> None:
    ib = client.ib
    subscriptions = [ib.reqPnL(account) for account in accounts]
    singles = [ib.reqPnLSingle(row["account"], "", row["con_id"]) for row in snap.rows("positions")]
    client.requests += len(subscriptions) + len(singles)
    await _until(lambda: all(not math.isnan(p.dailyPnL) for p in subscriptions), PNL_WAIT)
    await _until(lambda: all(not math.isnan(p.dailyPnL) for p in singles), PNL_WAIT)
    for p in subscriptions:
        snap.rows("pnl").append(
            {"account": p.account, "con_id": None, "position": None,
             "daily_pnl": number(p.dailyPnL), "unrealized_pnl": number(p.unrealizedPnL),
             "realized_pnl": number(p.realizedPnL), "value": None}
        )  # fmt: skip
        ib.cancelPnL(p.account)
    for p in singles:  # IB sends nothing for a contract it cannot price: left out, not zero
        if not math.isnan(p.dailyPnL):
            snap.rows("pnl").append(
                {"account": p.account, "con_id": p.conId, "position": number(p.position),
                 "daily_pnl": number(p.dailyPnL), "unrealized_pnl": number(p.unrealizedPnL),
                 "realized_pnl": number(p.realizedPnL), "value": number(p.value)}
            )  # fmt: skip
        ib.cancelPnLSingle(p.account, "", p.conId)


def _executions(fills: list[Fill], snap: Snapshot) -> None:
    latest: dict[str, Fill] = {}
    for fill in fills:  # a correction (.02 after .01) replaces the fill it corrects
        base, _, version = fill.execution.execId.rpartition(".")
        kept = latest.get(base)
        if kept is None or kept.execution.execId.rpartition(".")[2] < version:
            latest[base] = fill
    for fill in latest.values():
        e, report = fill.execution, fill.commissionReport
        arrived = bool(report.execId)
        snap.rows("executions").append(
            {"exec_id": e.execId, "account": e.acctNumber, **_contract(fill.contract),
             "side": e.side, "shares": float(e.shares), "price": float(e.price),
             "time": e.time.astimezone(UTC), "order_id": e.orderId, "perm_id": e.permId,
             "client_id": e.clientId, "order_ref": e.orderRef or None, "exchange": e.exchange,
             "cum_qty": float(e.cumQty), "avg_price": float(e.avgPrice),
             "commission": report.commission if arrived else None,
             "commission_currency": report.currency if arrived else None,
             "realized_pnl": number(report.realizedPNL) if arrived else None}
        )  # fmt: skip
        if arrived:
            snap.rows("commissions").append(
                {"exec_id": e.execId, "commission": report.commission,
                 "currency": report.currency, "realized_pnl": number(report.realizedPNL)}
            )  # fmt: skip


def _order(trade: Trade, completed: bool = False) -> dict[str, Any]:
    o, status = trade.order, trade.orderStatus
    row = {
        "order_id": o.orderId, "perm_id": o.permId, "client_id": o.clientId,
        "account": o.account or None, **_contract(trade.contract), "action": o.action,
        "quantity": float(o.totalQuantity), "order_type": o.orderType,
        "limit_price": number(o.lmtPrice), "aux_price": number(o.auxPrice), "tif": o.tif,
        "order_ref": o.orderRef or None, "status": status.status,
        "fa_group": o.faGroup or None, "fa_method": o.faMethod or None,
    }  # fmt: skip
    if completed:  # ib_async keeps the order's filled quantity, not the completion time
        row["filled"] = number(o.filledQuantity)
    else:
        row["filled"] = float(status.filled)
        row["avg_fill_price"] = number(status.avgFillPrice)
    return row


async def _fa(client: IBClient, snap: Snapshot) -> None:
    ib = client.ib
    groups = await client.call(ib.requestFAAsync(fa.GROUPS), "FA groups")
    aliases = await client.call(ib.requestFAAsync(fa.ALIASES), "FA aliases")
    profiles = await client.call(ib.requestFAAsync(fa.PROFILES), "FA profiles")
    snap.rows("fa_groups").extend(fa_groups(groups or ""))
    snap.rows("fa_profiles").extend(fa_profiles(profiles or ""))
    snap.rows("fa_aliases").extend(fa_aliases(aliases or ""))


def fa_groups(xml: str) -> list[dict[str, Any]]:
    """IB's groups XML (new and old shapes) as one row per (group, account)."""
    return [
        {"group_name": group.name, "method": group.method, "account": member.account,
         "amount": float(member.amount) if member.amount else None}
        for group in fa.read_groups(xml)
        for member in group.members
    ]  # fmt: skip


def fa_profiles(xml: str) -> list[dict[str, Any]]:
    return [
        {"profile": profile.name, "type": int(profile.type or 0), "account": member.account,
         "amount": float(member.amount or 0)}
        for profile in fa.read_profiles(xml)
        for member in profile.allocations
    ]  # fmt: skip


def fa_aliases(xml: str) -> list[dict[str, Any]]:
    return [{"account": account, "alias": alias} for account, alias in fa.read_aliases(xml)]


def _contract(contract: Any) -> dict[str, Any]:
    return {"con_id": contract.conId, "symbol": contract.symbol, "sec_type": contract.secType,
            "currency": contract.currency}  # fmt: skip


async def _until(done: Any, timeout: float) -> None:
    """Wait until `done()` or `timeout` seconds, whichever first (IB streams these)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not done() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
