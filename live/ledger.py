"""The journal's ledger half: executions, commissions, the positions baseline, differences.

Executions are kept per execId with IB's correction rule: `.02` supersedes `.01` of the same
base id; the superseded row stays, flagged by `superseded_by`. Commissions join by execId and may
arrive before or after their execution (kept aside until it does). `Ledger` is mixed into
`live.journal.Journal`, whose connection and transactions it uses.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class ExecutionRecord:
    """One execution as IB reported it (execDetails); time is UTC."""

    exec_id: str
    account: str
    con_id: int
    side: str
    shares: float
    price: float
    time: datetime
    order_id: int = 0
    perm_id: int = 0
    client_id: int = 0
    order_ref: str = ""

    @property
    def base_id(self) -> str:
        return base_exec_id(self.exec_id)


def base_exec_id(exec_id: str) -> str:
    """IB's correction family: the execId up to its last dot (`.01` and `.02` share it)."""
    return exec_id.rsplit(".", 1)[0] if "." in exec_id else exec_id


def exec_revision(exec_id: str) -> tuple[int, str]:
    """The correction number after the last dot: `.02` is newer than `.01`."""
    tail = exec_id.rsplit(".", 1)[-1]
    return (int(tail), tail) if tail.isdigit() else (-1, tail)


@dataclass(frozen=True)
class ExecutionRow:
    """An execution as journaled, with its commission once known."""

    exec_id: str
    base_id: str
    key: str | None
    order_id: int | None
    perm_id: int | None
    client_id: int | None
    account: str
    con_id: int
    side: str
    shares: float
    price: float
    time: str
    order_ref: str | None
    superseded_by: str | None
    commission: float | None
    commission_currency: str | None
    realized_pnl: float | None
    in_baseline: int
    recorded_at: str

    @property
    def signed_shares(self) -> float:
        return self.shares if self.side == "BOT" else -self.shares


_EXECUTION_COLUMNS = ", ".join(f.name for f in fields(ExecutionRow))


class Ledger:
    """Executions, commissions, baseline and differences (needs `_db`, `_tx`, `_event`)."""

    _db: sqlite3.Connection

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _event(self, key: str, kind: str, detail: str = "") -> None:
        raise NotImplementedError

    # ---- executions and commissions ---------------------------------------------------------

    def record_execution(self, rec: ExecutionRecord, key: str | None) -> bool:
        """Upsert one execution by execId; returns True if it was new. Corrections supersede."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM executions WHERE exec_id = ?", (rec.exec_id,)).fetchone():
                return False
            db.execute(
                "INSERT INTO executions (exec_id, base_id, key, order_id, perm_id, client_id, "
                "account, con_id, side, shares, price, time, order_ref, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.exec_id, rec.base_id, key, rec.order_id, rec.perm_id, rec.client_id,
                    rec.account, rec.con_id, rec.side, rec.shares, rec.price,
                    rec.time.astimezone(UTC).isoformat(), rec.order_ref, now_text(),
                ),
            )  # fmt: skip
            family = [
                r["exec_id"]
                for r in db.execute(
                    "SELECT exec_id FROM executions WHERE base_id = ?", (rec.base_id,)
                )
            ]
            latest = max(family, key=exec_revision)
            db.execute(
                "UPDATE executions SET superseded_by = CASE WHEN exec_id = ? THEN NULL ELSE ? END "
                "WHERE base_id = ?",
                (latest, latest, rec.base_id),
            )
            pending = db.execute(
                "DELETE FROM pending_commissions WHERE exec_id = ? RETURNING *", (rec.exec_id,)
            ).fetchone()
            if pending is not None:
                self._set_commission(rec.exec_id, key, *tuple(pending)[1:])
            if key is not None:
                note = f" (corrects {', '.join(e for e in family if e != latest)})"
                self._event(
                    key,
                    "fill",
                    f"{rec.side} {rec.shares:g} @ {rec.price:g} {rec.account} exec {rec.exec_id}"
                    + (note if len(family) > 1 and latest == rec.exec_id else ""),
                )
        return True

    def record_commission(
        self, exec_id: str, commission: float, currency: str, realized_pnl: float | None
    ) -> bool:
        """Join a commission to its execution (kept aside until the execution arrives)."""
        with self._tx() as db:
            found = db.execute(
                "SELECT key, commission, commission_currency, realized_pnl FROM executions "
                "WHERE exec_id = ?",
                (exec_id,),
            ).fetchone()
            if found is None:
                db.execute(
                    "INSERT OR REPLACE INTO pending_commissions VALUES (?, ?, ?, ?)",
                    (exec_id, commission, currency, realized_pnl),
                )
                return True
            if tuple(found)[1:] == (commission, currency, realized_pnl):
                return False
            self._set_commission(exec_id, found["key"], commission, currency, realized_pnl)
        return True

    def _set_commission(
        self, exec_id: str, key: str | None, commission: float, currency: str, pnl: float | None
    ) -> None:
        self._db.execute(
            "UPDATE executions SET commission = ?, commission_currency = ?, realized_pnl = ? "
            "WHERE exec_id = ?",
            (commission, currency, pnl, exec_id),
        )
        if key is not None:
            self._event(key, "commission", f"{commission:g} {currency} exec {exec_id}")

    def executions(self, key: str | None = None) -> list[ExecutionRow]:
        query, args = f"SELECT {_EXECUTION_COLUMNS} FROM executions", ()
        if key is not None:
            query, args = query + " WHERE key = ?", (key,)
        rows = self._db.execute(query + " ORDER BY time, exec_id", args)
        return [ExecutionRow(*r) for r in rows]

    # ---- positions baseline and differences -------------------------------------------------

    def baseline(self) -> dict[tuple[str, int], float] | None:
        """Positions at the journal's first reconcile, or None before it."""
        if self._db.execute("SELECT 1 FROM meta WHERE name = 'baseline_at'").fetchone() is None:
            return None
        rows = self._db.execute("SELECT account, con_id, position FROM baseline")
        return {(r["account"], r["con_id"]): r["position"] for r in rows}

    def set_baseline(self, positions: dict[tuple[str, int], float]) -> None:
        """Fix the starting positions; every execution journaled so far is already in them."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO baseline VALUES (?, ?, ?)",
                [(a, c, q) for (a, c), q in positions.items()],
            )
            db.execute("UPDATE executions SET in_baseline = 1")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('baseline_at', ?)", (now_text(),))

    def record_difference(
        self,
        kind: str,
        subject: str,
        detail: str,
        key: str | None = None,
        account: str | None = None,
        con_id: int | None = None,
    ) -> None:
        """A disagreement with the gateway, kept (and re-dated when seen again), never hidden."""
        at = now_text()
        with self._tx() as db:
            db.execute(
                "INSERT INTO differences VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, subject) DO UPDATE SET detail = excluded.detail, "
                "last_seen = excluded.last_seen",
                (kind, subject, key, account, con_id, detail, at, at),
            )
            if key is not None:
                self._event(key, f"difference {kind}", detail)

    def differences(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute("SELECT * FROM differences ORDER BY first_seen")]
