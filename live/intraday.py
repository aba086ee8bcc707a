"""The accounts as they stand during the day: positions, P&L and account values, from IB's own
subscriptions into `live_positions`, `live_pnl` and `live_account_values`.

ib_async's connect already subscribes every position (reqPositions) and each account's values
(reqAccountUpdatesMulti, for up to 50 accounts); after each connect this adds IB's P&L per
account (reqPnL) and per held contract (reqPnLSingle), and one per contract the account takes
up later. IB pushes positions on every change, P&L about once a second and account values on
changes and every three minutes (IB's "Account Updates" and "P&L" API pages).

Each change is kept by its key (account and contract, or account, key and currency) and
written at the next flush, so a key gets at most one row per flush interval (the latest) and
a row only when its figures changed: the lag from IB's message to the lake is at most one
flush interval plus the write. An FA master's sub-accounts are also summed per contract under
the master (`aggregate` rows), so the master's exposure is one query.

The latest figures also answer `exposure(account)`, which the risk guard (live.risk) reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from ib_async import IB, AccountValue, PnL, PnLSingle, Position

from live.lake_writer import LakeWriter
from live.risk import Exposure
from live.safety import is_fa_master
from warehouse import live_streams as lake
from warehouse.schemas import polars_schema

UNSET = 1e300  # IB sends Double.MAX_VALUE for a figure it has not computed


def _figure(x: float | None) -> float | None:
    """A P&L figure as stored: None for IB's unset values."""
    if x is None or math.isnan(x) or abs(x) >= UNSET:
        return None
    return float(x)


def _amount(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class IntradayAccounts:
    """Keeps the trading login's accounts' intraday figures and writes them to the lake."""

    def __init__(self, ib: IB, home: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.ib = ib
        self.lake = LakeWriter(home)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._positions: dict[tuple[str, int], tuple[float, float]] = {}
        self._pnl: dict[str, tuple[float | None, ...]] = {}
        self._single: dict[tuple[str, int], tuple[float | None, ...]] = {}
        self._pending: dict[str, dict[tuple, dict[str, Any]]] = {d: {} for d in _DATASETS}
        self._written: dict[str, dict[tuple, tuple]] = {d: {} for d in _DATASETS}
        self._subscribed: set[tuple[str, int]] = set()  # (account, conId) with a pnlSingle
        self._accounts: set[str] = set()  # with a reqPnL on this connection
        self._live = False  # subscriptions made on the current connection
        self.changes = 0  # figures received: the risk guard looks again when this moves
        self.rows_written = 0
        self.max_lag = 0.0  # seconds from a change's arrival to its row's write

    # ------------------------------------------------------------------ subscriptions
    def attach(self) -> None:
        ib = self.ib
        ib.positionEvent += self._on_position
        ib.accountValueEvent += self._on_account_value
        ib.pnlEvent += self._on_pnl
        ib.pnlSingleEvent += self._on_pnl_single
        ib.disconnectedEvent += self._on_disconnected

    def detach(self) -> None:
        ib = self.ib
        ib.positionEvent -= self._on_position
        ib.accountValueEvent -= self._on_account_value
        ib.pnlEvent -= self._on_pnl
        ib.pnlSingleEvent -= self._on_pnl_single
        ib.disconnectedEvent -= self._on_disconnected

    def subscribe(self) -> None:
        """After each connect: P&L of every account and of every position it holds (ib_async
        forgets subscriptions with the socket)."""
        self._live = True
        for account in self.accounts:
            self.ib.reqPnL(account)
            self._accounts.add(account)
        held = set()
        for p in self.ib.positions():  # ib_async's connect asked for them: they are in
            held.add((p.account, p.contract.conId))
            self._set_position(p.account, p.contract.conId, p.position, p.avgCost)
        for (account, con_id), (quantity, _) in list(self._positions.items()):
            if quantity and (account, con_id) not in held:  # closed while the link was down
                self._set_position(account, con_id, 0.0, 0.0)

    async def resubscribe(self, timeout: float) -> None:
        """After 1101: IB dropped the account subscriptions with the data (its message codes
        page: market and account data requests must be resubmitted), so every one again,
        account values included. Cancels first, so ib_async forgets the dropped ones."""
        for account in self._accounts:
            self.ib.cancelPnL(account)
        for account, con_id in self._subscribed:
            self.ib.cancelPnLSingle(account, "", con_id)
        self._accounts.clear()
        self._subscribed.clear()
        self.subscribe()
        for account in self.accounts:
            await asyncio.wait_for(self.ib.reqAccountUpdatesMultiAsync(account), timeout)

    @property
    def accounts(self) -> list[str]:
        """The login's accounts that hold positions (an FA master holds none itself)."""
        return [a for a in self.ib.managedAccounts() if not is_fa_master(a)]

    @property
    def master(self) -> str | None:
        return next((a for a in self.ib.managedAccounts() if is_fa_master(a)), None)

    def _follow(self, account: str, con_id: int) -> None:
        """The contract's P&L from now on (a socket that just went: the next connect asks)."""
        if self._live and (account, con_id) not in self._subscribed:
            self._subscribed.add((account, con_id))
            with contextlib.suppress(ConnectionError):
                self.ib.reqPnLSingle(account, "", con_id)

    def _on_disconnected(self) -> None:
        self._live = False
        self._subscribed.clear()
        self._accounts.clear()

    # ------------------------------------------------------------------ IB's messages
    def _on_position(self, position: Position) -> None:
        self._set_position(
            position.account, position.contract.conId, position.position, position.avgCost
        )

    def _set_position(self, account: str, con_id: int, quantity: float, avg_cost: float) -> None:
        figures = (float(quantity), float(avg_cost))
        self._positions[(account, con_id)] = figures
        self.changes += 1
        self._change(lake.POSITIONS, (account, con_id), _position_row(account, con_id, *figures))
        self._aggregate_position(con_id)
        self._follow(account, con_id)  # last: the figures are kept whatever the socket does

    def _on_pnl(self, pnl: PnL) -> None:
        figures = tuple(_figure(x) for x in (pnl.dailyPnL, pnl.unrealizedPnL, pnl.realizedPnL))
        self._pnl[pnl.account] = figures
        self.changes += 1
        self._change(lake.PNL, (pnl.account, None), _pnl_row(pnl.account, None, *figures))
        self._aggregate_pnl()

    def _on_pnl_single(self, single: PnLSingle) -> None:
        figures = tuple(
            _figure(x)
            for x in (
                single.dailyPnL, single.unrealizedPnL, single.realizedPnL, single.position,
                single.value,
            )
        )  # fmt: skip
        key = (single.account, single.conId)
        self._single[key] = figures
        self.changes += 1
        self._change(lake.PNL, key, _pnl_row(single.account, single.conId, *figures))
        self._aggregate_single(single.conId)

    def _on_account_value(self, value: AccountValue) -> None:
        if value.modelCode or not value.account or is_fa_master(value.account):
            return
        key = (value.account, value.tag, value.currency)
        row = {
            "account": value.account, "key": value.tag, "currency": value.currency,
            "value": value.value, "amount": _amount(value.value),
        }  # fmt: skip
        self._change(lake.ACCOUNT_VALUES, key, row)

    # ------------------------------------------------------------------ an FA master's sums
    def _subs_of(self, master: str | None) -> list[str]:
        return [a for a in self.accounts if a != master] if master else []

    def _aggregate_position(self, con_id: int) -> None:
        master = self.master
        held = [self._positions[(a, con_id)] for a in self._subs_of(master)
                if (a, con_id) in self._positions]  # fmt: skip
        if master is None or not held:
            return
        total = sum(q for q, _ in held)
        one_side = all(q >= 0 for q, _ in held) or all(q <= 0 for q, _ in held)
        avg = sum(q * c for q, c in held) / total if total and one_side else None
        row = _position_row(master, con_id, total, avg, aggregate=True)
        self._change(lake.POSITIONS, (master, con_id, "aggregate"), row)

    def _aggregate_pnl(self) -> None:
        master = self.master
        parts = [self._pnl[a] for a in self._subs_of(master) if a in self._pnl]
        if master is None or not parts:
            return
        row = _pnl_row(master, None, *_sums(parts), aggregate=True)
        self._change(lake.PNL, (master, None, "aggregate"), row)

    def _aggregate_single(self, con_id: int) -> None:
        master = self.master
        parts = [self._single[(a, con_id)] for a in self._subs_of(master)
                 if (a, con_id) in self._single]  # fmt: skip
        if master is None or not parts:
            return
        row = _pnl_row(master, con_id, *_sums(parts), aggregate=True)
        self._change(lake.PNL, (master, con_id, "aggregate"), row)

    # ------------------------------------------------------------------ writing
    def _change(self, dataset: str, key: tuple, row: dict[str, Any]) -> None:
        """Keep the latest figures of `key` for the next flush, unless already written."""
        figures = tuple(row.values())
        if self._written[dataset].get(key) == figures:
            self._pending[dataset].pop(key, None)  # changed and changed back: nothing to say
            return
        self._pending[dataset][key] = {"time": self._clock(), **row}

    async def flush(self) -> int:
        """Write every pending change, in a thread (orders go on meanwhile); returns the rows
        written. The rows of a failed write wait for the next flush unless newer ones came."""
        taken, self._pending = self._pending, {d: {} for d in _DATASETS}
        stored = await asyncio.to_thread(self._write, taken)
        now = self._clock()
        for dataset, pending in taken.items():
            if dataset not in stored:
                for key, row in pending.items():
                    self._pending[dataset].setdefault(key, row)
                continue
            for key, row in pending.items():
                self._written[dataset][key] = tuple(v for k, v in row.items() if k != "time")
                self.max_lag = max(self.max_lag, (now - row["time"]).total_seconds())
            self.rows_written += len(pending)
        self.lake.compact_if_due()
        return sum(len(taken[d]) for d in stored)

    def _write(self, taken: dict[str, dict[tuple, dict[str, Any]]]) -> set[str]:
        """The datasets whose rows are stored (any thread)."""
        stored = set()
        for dataset, pending in taken.items():
            frame = pl.DataFrame(list(pending.values()), schema=polars_schema(dataset))
            if not pending or self.lake.append(dataset, frame) is not None:
                stored.add(dataset)
        return stored

    # ------------------------------------------------------------------ reading
    def exposure(self, account: str) -> Exposure | None:
        """The account's latest P&L, positions and their values (an FA master's: its
        sub-accounts' sums); None until IB has sent the P&L of the account and of every
        position it holds."""
        accounts = self._subs_of(account) if account == self.master else [account]
        if not accounts or any(a not in self._pnl for a in accounts):
            return None
        positions: dict[int, float] = {}
        values: dict[int, float] = {}
        for (a, con_id), (quantity, _) in self._positions.items():
            if a not in accounts or not quantity:
                continue
            value = self._single.get((a, con_id), (None,) * 5)[4]
            if value is None:
                return None
            positions[con_id] = positions.get(con_id, 0.0) + quantity
            values[con_id] = values.get(con_id, 0.0) + value
        daily = [d for a in accounts if (d := self._pnl[a][0]) is not None]
        return Exposure(account, sum(daily) if daily else None, positions, values)

    def health(self) -> dict[str, Any]:
        return {
            "accounts": len(self._accounts),
            "pnl_single": len(self._subscribed),
            "rows_written": self.rows_written,
            "max_lag_seconds": round(self.max_lag, 3),
        }


_DATASETS = (lake.POSITIONS, lake.PNL, lake.ACCOUNT_VALUES)


def _position_row(
    account: str, con_id: int, position: float, avg_cost: float | None, aggregate: bool = False
) -> dict[str, Any]:
    return {"account": account, "con_id": con_id, "position": position, "avg_cost": avg_cost,
            "aggregate": aggregate}  # fmt: skip


def _pnl_row(
    account: str,
    con_id: int | None,
    daily: float | None,
    unrealized: float | None,
    realized: float | None,
    position: float | None = None,
    value: float | None = None,
    aggregate: bool = False,
) -> dict[str, Any]:
    return {
        "account": account, "con_id": con_id, "daily_pnl": daily, "unrealized_pnl": unrealized,
        "realized_pnl": realized, "position": position, "value": value, "aggregate": aggregate,
    }  # fmt: skip


def _sums(parts: Iterable[tuple[float | None, ...]]) -> list[float | None]:
    """Figure by figure, the sum of the known ones (None where none is known)."""
    columns = list(zip(*parts, strict=True))
    return [sum(k) if (k := [x for x in col if x is not None]) else None for col in columns]
