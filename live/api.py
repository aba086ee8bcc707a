"""The Python API for users: write intents, cancels and modifications into the journal.

These functions never talk to the gateway: the running live service (`ibw live`) is the only
process that does; each write rings its doorbell (live.doorbell) once committed, and it sends
what they journal at once. They use the journal under `home` (default `$IBW_HOME`), so
scripts, notebooks and the CLI can call them at any time, from any process, alongside the
service. Each thread keeps its connection to a journal file open between calls (a script that
submits in a loop opens it once), and opens it again if the file was replaced meanwhile.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from live.doorbell import ring
from live.intents import OrderIntent
from live.journal import IntentRow, Journal, RiskBlock, journal_path
from warehouse import layout

_held = threading.local()  # this thread's open journals: path -> (pid, inode, Journal)


def _journal(home: Path | None) -> Journal:
    """This thread's connection to the journal under `home`: a new one after a fork, or once
    the file at the path is another (a home deleted and made again)."""
    path = journal_path(home)
    held: dict[Path, tuple[int, int, Journal]] = _held.__dict__.setdefault("journals", {})
    pid, inode, journal = held.get(path, (0, 0, None))
    if journal is not None and pid == os.getpid() and inode == _inode(path):
        return journal
    if journal is not None and pid == os.getpid():
        journal.close()
    journal = Journal(path)
    held[path] = (os.getpid(), _inode(path), journal)
    return journal


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return -1


@contextmanager
def _writing(home: Path | None) -> Iterator[Journal]:
    """The journal for one write; the service's doorbell is rung once it is committed (not
    when the write failed)."""
    yield _journal(home)
    ring(home or layout.home())


def submit(intent: OrderIntent, home: Path | None = None) -> IntentRow:
    """Journal the intent; the same key with the same intent again changes nothing."""
    with _writing(home) as journal:
        return journal.submit(intent)


def cancel(key: str, home: Path | None = None) -> IntentRow:
    """Ask for the order to be cancelled (a finished order is left as it is)."""
    with _writing(home) as journal:
        return journal.request_cancel(key)


def cancel_all(reason: str = "manual", home: Path | None = None) -> int:
    """The kill switch: cancel every open order, through IB's global cancel (which also cancels
    orders other clients placed on the login); returns how many journaled orders were open."""
    with _writing(home) as journal:
        return journal.request_global_cancel(reason)


def unblock(account: str, reason: str, home: Path | None = None) -> list[RiskBlock]:
    """Lift the account's risk blocks (live.risk): its orders are sent again. Returns the blocks
    lifted; an account with none is an error."""
    with _writing(home) as journal:
        return journal.unblock(account, reason)


def modify(
    key: str,
    quantity: float | None = None,
    limit_price: float | None = None,
    aux_price: float | None = None,
    home: Path | None = None,
) -> IntentRow:
    """Ask for a new quantity or prices on a working (or not yet sent) order."""
    with _writing(home) as journal:
        return journal.request_modify(
            key, quantity=quantity, limit_price=limit_price, aux_price=aux_price
        )


def status(key: str, home: Path | None = None) -> dict[str, Any]:
    """The order's journal row, its events and its fills with commissions."""
    journal = _journal(home)
    return {
        "order": journal.get(key),
        "events": journal.events(key),
        "fills": journal.executions(key),
    }
