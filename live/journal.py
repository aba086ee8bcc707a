"""The durable order journal: `$IBW_HOME/live/journal.sqlite`, the single record of every intent.

Why SQLite in WAL mode, every write one transaction: a `kill -9` at any instant leaves the
journal as it was before or after a write, never between, so a restarted service knows exactly
which intents it may send (`new`), which it may have sent (`sending`: an order id was taken, the
gateway may or may not have it) and which the gateway acknowledged. Writers of intents, cancels
and modifications commit with `synchronous=FULL` (fsynced: even a power cut keeps them). The
service's own writes (sending, statuses, fills) commit with `NORMAL`: in WAL mode that survives
any crash of the process and costs no fsync, and what a power cut could take back the next
reconciliation restores from IB (an order carrying an intent's key is adopted whatever state
the journal left it in; today's executions and orders are fetched again).
Several processes open the journal at once (the CLI and the Python API write intents, cancels and
modifications; only the service talks to the gateway), so every connection has a busy timeout.

Intent states: new -> refused | sending | done (cancelled before sending);
sending -> new (reconciliation: the gateway never got it) | working | done; working -> done.
Executions, commissions, the positions baseline and differences: `live.ledger`. Risk blocks
(`live.risk`): an account past a risk limit is blocked until a person lifts the block
(`ibw order unblock`); the rows stay, lifted or not, as the record of who traded when.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ibkr.exceptions import IBWError
from live.intents import OrderIntent
from live.ledger import Ledger, now_text
from warehouse import layout

STATES = ("new", "refused", "sending", "working", "done")
TERMINAL_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
BUSY_TIMEOUT_MS = 30_000
MODIFIABLE = ("quantity", "limit_price", "aux_price")

SCHEMA_VERSION = 2  # raise it with every change to SCHEMA or its migrations below
SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    key TEXT PRIMARY KEY, intent TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, state TEXT NOT NULL, order_id INTEGER, client_id INTEGER,
    perm_id INTEGER, modification TEXT, modification_state TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0, reason TEXT, applied_modification TEXT);
CREATE INDEX IF NOT EXISTS intents_state ON intents(state);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS events_key ON events(key, id);
CREATE TABLE IF NOT EXISTS order_status (
    key TEXT PRIMARY KEY, status TEXT NOT NULL, filled REAL, remaining REAL,
    avg_fill_price REAL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    exec_id TEXT PRIMARY KEY, base_id TEXT NOT NULL, key TEXT, order_id INTEGER, perm_id INTEGER,
    client_id INTEGER, account TEXT NOT NULL, con_id INTEGER NOT NULL, side TEXT NOT NULL,
    shares REAL NOT NULL, price REAL NOT NULL, time TEXT NOT NULL, order_ref TEXT,
    superseded_by TEXT, commission REAL, commission_currency TEXT, realized_pnl REAL,
    in_baseline INTEGER NOT NULL DEFAULT 0, recorded_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS executions_base ON executions(base_id);
CREATE INDEX IF NOT EXISTS executions_key ON executions(key);
CREATE TABLE IF NOT EXISTS pending_commissions (
    exec_id TEXT PRIMARY KEY, commission REAL NOT NULL, currency TEXT, realized_pnl REAL);
CREATE TABLE IF NOT EXISTS differences (
    kind TEXT NOT NULL, subject TEXT NOT NULL, key TEXT, account TEXT, con_id INTEGER,
    detail TEXT NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
    PRIMARY KEY (kind, subject));
CREATE TABLE IF NOT EXISTS baseline (
    account TEXT NOT NULL, con_id INTEGER NOT NULL, position REAL NOT NULL,
    PRIMARY KEY (account, con_id));
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS global_cancels (
    id INTEGER PRIMARY KEY AUTOINCREMENT, requested_at TEXT NOT NULL, reason TEXT NOT NULL,
    open_orders INTEGER NOT NULL, sent_at TEXT);
CREATE TABLE IF NOT EXISTS risk_blocks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, "limit" TEXT NOT NULL,
    sentence TEXT NOT NULL, blocked_at TEXT NOT NULL, lifted_at TEXT, lifted_reason TEXT);
"""


class JournalError(IBWError):
    """A journal request that cannot be honoured (unknown key, conflicting intent, wrong state)."""

    default_cause = "the journal refused the request"
    default_fix = "check the order key with `ibw order list`"


def journal_path(home: Path | None = None) -> Path:
    return (home or layout.home()) / "live" / "journal.sqlite"


def is_terminal(status: str, intent: OrderIntent) -> bool:
    """IB's finished statuses; Inactive is a held bracket leg (transmit=False), not a dead one."""
    if status == "Inactive" and not intent.transmit:
        return False
    return status in TERMINAL_STATUSES


@dataclass(frozen=True)
class RiskBlock:
    """An account blocked by a risk limit (live.risk): no order of it is sent until lifted."""

    account: str
    limit: str
    sentence: str
    blocked_at: str


@dataclass(frozen=True)
class IntentRow:
    key: str
    intent: OrderIntent
    state: str
    created_at: str
    updated_at: str
    order_id: int | None
    client_id: int | None
    perm_id: int | None
    modification: dict[str, float] | None
    modification_state: str | None
    cancel_requested: bool
    reason: str | None
    status: str | None
    filled: float | None
    remaining: float | None
    avg_fill_price: float | None

    @property
    def effective(self) -> OrderIntent:
        """The intent with its requested modification applied: what the gateway should hold."""
        return self.intent.modified(**self.modification) if self.modification else self.intent


class Journal(Ledger):
    """One connection to the journal; cheap to open, safe to open from several processes."""

    def __init__(self, path: Path, fsync: bool = True) -> None:
        """`fsync=False` is for the service only (see the module's docstring)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute(f"PRAGMA synchronous = {'FULL' if fsync else 'NORMAL'}")
        if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._create_schema()  # once per journal file and version, not on every open

    def _create_schema(self) -> None:
        self._db.executescript(f"BEGIN IMMEDIATE;{SCHEMA}COMMIT;")
        with self._tx() as db:  # a journal written before the column existed gets it
            columns = {r["name"] for r in db.execute("PRAGMA table_info(intents)")}
            if "applied_modification" not in columns:
                db.execute("ALTER TABLE intents ADD COLUMN applied_modification TEXT")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @classmethod
    def open(cls, home: Path | None = None, fsync: bool = True) -> Journal:
        return cls(journal_path(home), fsync)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so writers queue, not fail."""
        if self._db.in_transaction:  # nested: the outer transaction commits
            yield self._db
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _event(self, key: str, kind: str, detail: str = "") -> None:
        self._db.execute(
            "INSERT INTO events (key, at, kind, detail) VALUES (?, ?, ?, ?)",
            (key, now_text(), kind, detail),
        )

    # ---- intents written by users (CLI, Python API) --------------------------------------

    def submit(self, intent: OrderIntent) -> IntentRow:
        """Journal a new intent; the same key with the same intent again is a no-op."""
        text = intent.to_json()
        with self._tx() as db:
            found = db.execute("SELECT intent FROM intents WHERE key = ?", (intent.key,)).fetchone()
            if found is not None:
                if found["intent"] != text:
                    raise JournalError(
                        "the key is already used by a different order",
                        "choose a new key for a new order, or use modify to change this one",
                        subject=f"order {intent.key}",
                    )
            else:
                if intent.parent_key and self._row(intent.parent_key) is None:
                    raise JournalError(
                        f"its parent {intent.parent_key} is not in the journal",
                        "submit the parent order first",
                        subject=f"order {intent.key}",
                    )
                at = now_text()
                db.execute(
                    "INSERT INTO intents (key, intent, created_at, updated_at, state) "
                    "VALUES (?, ?, ?, ?, 'new')",
                    (intent.key, text, at, at),
                )
                self._event(intent.key, "submitted", text)
        return self.get(intent.key)

    def request_cancel(self, key: str) -> IntentRow:
        """Ask the service to cancel; a finished order needs nothing and is left as it is."""
        with self._tx() as db:
            row = self.get(key)
            if row.state in ("refused", "done") or row.cancel_requested:
                return row
            db.execute(
                "UPDATE intents SET cancel_requested = 1, updated_at = ? WHERE key = ?",
                (now_text(), key),
            )
            self._event(key, "cancel requested")
        return self.get(key)

    def request_modify(self, key: str, **changes: float | None) -> IntentRow:
        """Ask the service to change quantity or prices (absolute values, merged with earlier)."""
        wanted = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(wanted) - set(MODIFIABLE))
        subject = f"order {key}"
        if unknown or not wanted:
            raise JournalError(
                f"nothing to modify ({', '.join(unknown) or 'no change given'})",
                "give a new quantity, limit or aux price",
                subject=subject,
            )
        with self._tx() as db:
            row = self.get(key)
            if row.state in ("refused", "done") or row.cancel_requested:
                why = "is being cancelled" if row.cancel_requested else f"is {row.state}"
                raise JournalError(
                    f"the order {why} and cannot be modified",
                    "submit a new order under a new key",
                    subject=subject,
                )
            merged = {**(row.modification or {}), **wanted}
            row.intent.modified(**merged)  # validates the modified order, types included
            merged = {k: float(v) for k, v in merged.items()}
            db.execute(
                "UPDATE intents SET modification = ?, modification_state = 'pending', "
                "updated_at = ? WHERE key = ?",
                (json.dumps(merged, sort_keys=True), now_text(), key),
            )
            asked = {k: merged[k] for k in wanted}
            self._event(key, "modify requested", json.dumps(asked, sort_keys=True))
        return self.get(key)

    def request_global_cancel(self, reason: str) -> int:
        """The kill switch: every unfinished order is asked to cancel (one not sent yet never
        will be) and IB's global cancel is queued for the service, in one transaction; returns
        how many orders were open."""
        unfinished = "state IN ('new', 'sending', 'working')"
        with self._tx() as db:
            keys = [r["key"] for r in db.execute(f"SELECT key FROM intents WHERE {unfinished}")]
            at = now_text()
            db.execute(
                f"UPDATE intents SET cancel_requested = 1, updated_at = ? WHERE {unfinished}",
                (at,),
            )
            for key in keys:
                self._event(key, "cancel requested", f"kill switch: {reason}")
            db.execute(
                "INSERT INTO global_cancels (requested_at, reason, open_orders) VALUES (?, ?, ?)",
                (at, reason, len(keys)),
            )
        return len(keys)

    def global_cancels_to_send(self) -> list[int]:
        return [
            r["id"] for r in self._db.execute("SELECT id FROM global_cancels WHERE sent_at IS NULL")
        ]

    def global_cancel_sent(self, request: int) -> None:
        """After reqGlobalCancel went out: a crash before this sends it again, which cancels
        nothing more than the first did (at least once, and harmless twice)."""
        with self._tx() as db:
            db.execute("UPDATE global_cancels SET sent_at = ? WHERE id = ?", (now_text(), request))

    # ---- risk blocks (live.risk) -----------------------------------------------------------

    def block(self, account: str, limit: str, sentence: str) -> bool:
        """Block the account for a breached limit; False if that block is already open."""
        with self._tx() as db:
            if any(b.limit == limit for b in self.risk_blocks(account)):
                return False
            db.execute(
                'INSERT INTO risk_blocks (account, "limit", sentence, blocked_at) '
                "VALUES (?, ?, ?, ?)",
                (account, limit, sentence, now_text()),
            )
        return True

    def unblock(self, account: str, reason: str) -> list[RiskBlock]:
        """Lift every open block of the account (written by a person); returns them."""
        with self._tx() as db:
            lifted = self.risk_blocks(account)
            if not lifted:
                raise JournalError(
                    "the account has no open risk block",
                    "see the open blocks in the live service's health file",
                    subject=f"account {account}",
                )
            db.execute(
                "UPDATE risk_blocks SET lifted_at = ?, lifted_reason = ? "
                "WHERE account = ? AND lifted_at IS NULL",
                (now_text(), reason, account),
            )
        return lifted

    def risk_blocks(self, account: str | None = None) -> list[RiskBlock]:
        """The open blocks, of one account or of all, oldest first."""
        query = 'SELECT account, "limit", sentence, blocked_at FROM risk_blocks '
        query += "WHERE lifted_at IS NULL" + (" AND account = ?" if account is not None else "")
        args = (account,) if account is not None else ()
        return [RiskBlock(*r) for r in self._db.execute(query + " ORDER BY id", args)]

    # ---- reads ------------------------------------------------------------------------------

    def _row(self, key: str) -> sqlite3.Row | None:
        return self._db.execute(
            "SELECT i.*, s.status, s.filled, s.remaining, s.avg_fill_price FROM intents i "
            "LEFT JOIN order_status s USING (key) WHERE i.key = ?",
            (key,),
        ).fetchone()

    def find(self, key: str) -> IntentRow | None:
        found = self._row(key)
        return _intent_row(found) if found is not None else None

    def get(self, key: str) -> IntentRow:
        row = self.find(key)
        if row is None:
            raise JournalError(
                "no order with this key is in the journal",
                "check the key with `ibw order list`",
                subject=f"order {key}",
            )
        return row

    def intents(self, states: Iterable[str] | None = None) -> list[IntentRow]:
        """Intents in submission order, optionally only those in the given states."""
        query = (
            "SELECT i.*, s.status, s.filled, s.remaining, s.avg_fill_price FROM intents i "
            "LEFT JOIN order_status s USING (key)"
        )
        wanted = list(states or ())
        if wanted:
            query += f" WHERE i.state IN ({','.join('?' * len(wanted))})"
        rows = self._db.execute(query + " ORDER BY i.rowid", wanted).fetchall()
        return [_intent_row(r) for r in rows]

    def events(self, key: str | None = None) -> list[dict[str, Any]]:
        query, args = "SELECT * FROM events", ()
        if key is not None:
            query, args = query + " WHERE key = ?", (key,)
        return [dict(r) for r in self._db.execute(query + " ORDER BY id", args)]

    def key_for(self, order_ref: str, perm_id: int = 0, client_id: int = 0, order_id: int = 0):
        """The intent an IB order or fill belongs to: by orderRef, else permId, else order id."""
        if order_ref and self._row(order_ref) is not None:
            return order_ref
        if perm_id > 0:
            found = self._db.execute("SELECT key FROM intents WHERE perm_id = ?", (perm_id,))
            if (row := found.fetchone()) is not None:
                return row["key"]
        if order_id > 0:
            found = self._db.execute(
                "SELECT key FROM intents WHERE client_id = ? AND order_id = ?",
                (client_id, order_id),
            )
            if (row := found.fetchone()) is not None:
                return row["key"]
        return None

    def max_order_id(self, client_id: int) -> int:
        found = self._db.execute(
            "SELECT max(order_id) FROM intents WHERE client_id = ?", (client_id,)
        ).fetchone()[0]
        return int(found or 0)

    # ---- state changes written by the service ----------------------------------------------

    def _move(self, key: str, allowed: tuple[str, ...], state: str, **columns: Any) -> IntentRow:
        row = self.get(key)
        if row.state not in allowed:
            raise JournalError(
                f"the order is {row.state}, not {' or '.join(allowed)}, "
                f"so it cannot become {state}",
                "reconcile with the gateway before sending",
                subject=f"order {key}",
            )
        sets = ", ".join(f"{c} = ?" for c in ("state", "updated_at", *columns))
        self._db.execute(
            f"UPDATE intents SET {sets} WHERE key = ?", (state, now_text(), *columns.values(), key)
        )
        return row

    def refuse(self, key: str, reason: str) -> None:
        with self._tx():
            self._move(key, ("new",), "refused", reason=reason)
            self._event(key, "refused", reason)

    def finish(self, key: str, reason: str) -> None:
        """An intent that ends without (further) gateway news: cancelled before it was sent."""
        with self._tx():
            self._move(key, ("new", "sending"), "done", reason=reason)
            self._event(key, "done", reason)

    def mark_sending(self, key: str, order_id: int, client_id: int) -> None:
        """Written and committed BEFORE placeOrder, so a crash leaves the id to reconcile by."""
        with self._tx():
            row = self._move(key, ("new",), "sending", order_id=order_id, client_id=client_id)
            if row.modification_state == "pending":  # it goes out with the modified values
                self._db.execute(
                    "UPDATE intents SET modification_state = 'applied', "
                    "applied_modification = modification WHERE key = ?",
                    (key,),
                )
            self._event(key, "sending", f"order id {order_id}, client id {client_id}")

    def requeue(self, key: str, reason: str) -> None:
        """The gateway never got the order: it goes out again, under a new order id."""
        with self._tx():
            self._move(key, ("sending",), "new")
            self._event(key, "requeued", reason)

    def set_modification_state(self, key: str, state: str, detail: str = "") -> None:
        """`applied`: the gateway holds the modification. `failed`: it still holds what it held
        before, so the modification falls back to the last applied one (a later request merges
        with that, never with the refused values)."""
        follows = {
            "applied": ", applied_modification = modification",
            "failed": ", modification = applied_modification",
        }.get(state, "")
        with self._tx() as db:
            db.execute(
                f"UPDATE intents SET modification_state = ?, updated_at = ?{follows} WHERE key = ?",
                (state, now_text(), key),
            )
            self._event(key, f"modification {state}", detail)

    def record_status(
        self,
        key: str,
        status: str,
        filled: float | None = None,
        remaining: float | None = None,
        avg_fill_price: float | None = None,
        *,
        order_id: int = 0,
        client_id: int = 0,
        perm_id: int = 0,
        reason: str = "",
        final: bool = False,
    ) -> bool:
        """The gateway's word on an order: it exists, so the intent is working or done.

        Adopts the gateway's order id and permId (an order found by orderRef after a restart
        is this intent's order and is never sent again); None keeps a figure as it was; `final`
        ends the intent whatever the status (a rejection). Returns True if anything changed.
        """
        with self._tx() as db:
            row = self.get(key)
            if row.state == "refused":
                return False
            finished = final or row.state == "done" or is_terminal(status, row.intent)
            state = "done" if finished else "working"  # IB's finished orders stay finished
            changes: dict[str, Any] = {}
            if order_id > 0 and (order_id, client_id) != (row.order_id, row.client_id):
                changes.update(order_id=order_id, client_id=client_id)
            if perm_id > 0 and perm_id != row.perm_id:
                changes["perm_id"] = perm_id
            if reason and state == "done" and not row.reason:
                changes["reason"] = reason
            if state == "done" and row.modification_state == "pending":
                changes["modification_state"] = "abandoned"  # the order finished first
            figures = tuple(
                old if new is None else new
                for new, old in zip(
                    (filled, remaining, avg_fill_price),
                    (row.filled, row.remaining, row.avg_fill_price),
                    strict=True,
                )
            )
            same = (status, *figures) == (row.status, row.filled, row.remaining, row.avg_fill_price)
            if same and not changes and state == row.state:
                return False
            if changes or state != row.state:
                sets = ", ".join(f"{c} = ?" for c in ("state", "updated_at", *changes))
                db.execute(
                    f"UPDATE intents SET {sets} WHERE key = ?",
                    (state, now_text(), *changes.values(), key),
                )
            db.execute(
                "INSERT INTO order_status (key, status, filled, remaining, avg_fill_price, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "status = excluded.status, filled = excluded.filled, "
                "remaining = excluded.remaining, avg_fill_price = excluded.avg_fill_price, "
                "updated_at = excluded.updated_at",
                (key, status, *figures, now_text()),
            )
            filled_now, remaining_now, avg_now = figures
            detail = f"{status}, filled {filled_now} remaining {remaining_now} avg {avg_now}"
            self._event(key, "status", detail + (f"; {reason}" if reason else ""))
        return True

    def note(self, key: str, kind: str, detail: str = "") -> None:
        """An event with no state change (an IB warning, a failed cancel, a modify sent)."""
        with self._tx():
            self._event(key, kind, detail)

    def settled(self) -> bool:
        """Nothing in flight: every intent sent (or refused, or finished), no modification or
        cancel waiting, every current fill with its commission."""
        busy = self._db.execute(
            "SELECT count(*) FROM intents WHERE state IN ('new', 'sending') OR (state = 'working' "
            "AND (cancel_requested = 1 OR modification_state = 'pending'))"
        ).fetchone()[0]
        waiting = self._db.execute(
            "SELECT count(*) FROM executions WHERE commission IS NULL AND superseded_by IS NULL"
        ).fetchone()[0]
        return busy == 0 and waiting == 0

    def summary(self) -> dict[str, Any]:
        """Counts for health reports: intents per state, fills, fills awaiting commission; and the
        open risk blocks."""
        states = dict.fromkeys(STATES, 0)
        for r in self._db.execute("SELECT state, count(*) n FROM intents GROUP BY state"):
            states[r["state"]] = r["n"]
        fills, waiting = self._db.execute(
            "SELECT count(*), count(*) - count(commission) FROM executions"
        ).fetchone()
        differences = self._db.execute("SELECT count(*) FROM differences").fetchone()[0]
        kills = self._db.execute("SELECT count(*) FROM global_cancels").fetchone()[0]
        blocks = [asdict(b) for b in self.risk_blocks()]
        return {
            "intents": states,
            "fills": fills,
            "fills_without_commission": waiting,
            "differences": differences,
            "global_cancels": kills,
            "risk_blocks": blocks,
        }


@lru_cache(maxsize=4096)
def _parse_intent(text: str) -> OrderIntent:
    """An intent's JSON never changes once journaled (modifications live beside it), and the
    service reads the same few rows on every status IB sends: parse and validate each once."""
    return OrderIntent.from_json(text)


def _intent_row(r: sqlite3.Row) -> IntentRow:
    return IntentRow(
        key=r["key"],
        intent=_parse_intent(r["intent"]),
        state=r["state"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        order_id=r["order_id"],
        client_id=r["client_id"],
        perm_id=r["perm_id"],
        modification=json.loads(r["modification"]) if r["modification"] else None,
        modification_state=r["modification_state"],
        cancel_requested=bool(r["cancel_requested"]),
        reason=r["reason"],
        status=r["status"],
        filled=r["filled"],
        remaining=r["remaining"],
        avg_fill_price=r["avg_fill_price"],
    )
