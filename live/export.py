"""The journal as warehouse rows: `live_orders`, `live_fills`, `live_differences` for analysts.

The journal stays the record; each export rewrites every day it holds (a journal is one trading
desk's orders, small), so a rerun replaces and nothing is appended twice.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from live.journal import Journal
from live.ledger import ExecutionRow
from warehouse import layout
from warehouse.catalog import refresh_catalog
from warehouse.live_orders import DATASETS, write_live_dataset


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def export_journal(journal: Journal, home: Path) -> dict[str, int]:
    """Write the three datasets; refresh the catalog when one appears for the first time."""
    lineage = {
        "request_id": f"journal-export-{secrets.token_hex(4)}",
        "fetched_at": datetime.now(UTC),
        "source": f"journal:{journal.path}",
    }
    rows = {
        "live_orders": [{**_order(r), **lineage} for r in journal.intents()],
        "live_fills": [{**_fill(e), **lineage} for e in journal.executions()],
        "live_differences": [{**_difference(d), **lineage} for d in journal.differences()],
    }
    is_new = any(rows[d] and not layout.data_files(layout.dataset_dir(home, d)) for d in DATASETS)
    counts = {}
    for dataset, dataset_rows in rows.items():
        written = write_live_dataset(home, dataset, dataset_rows, "journal")
        counts[dataset] = sum(written.values())
    if is_new:
        refresh_catalog(home)
    return counts


def _order(row: Any) -> dict[str, Any]:
    intent = row.effective
    created = _utc(row.created_at)
    return {
        "day": created.date(),
        "key": row.key,
        "state": row.state,
        "account": intent.account,
        "con_id": intent.con_id,
        "action": intent.action,
        "quantity": intent.quantity,
        "cash_quantity": intent.cash_quantity,
        "order_type": intent.order_type,
        "limit_price": intent.limit_price,
        "aux_price": intent.aux_price,
        "tif": intent.tif,
        "fa_group": intent.fa_group or intent.fa_profile,
        "parent_key": intent.parent_key,
        "order_id": row.order_id,
        "perm_id": row.perm_id,
        "client_id": row.client_id,
        "status": row.status,
        "filled": row.filled,
        "remaining": row.remaining,
        "avg_fill_price": row.avg_fill_price,
        "cancel_requested": row.cancel_requested,
        "modification_state": row.modification_state,
        "reason": row.reason,
        "intent": row.intent.to_json(),
        "created_at": created,
        "updated_at": _utc(row.updated_at),
    }


def _fill(e: ExecutionRow) -> dict[str, Any]:
    at = _utc(e.time)
    keep = ("exec_id", "base_id", "key", "order_id", "perm_id", "account", "con_id", "side")
    more = ("shares", "price", "superseded_by", "commission", "commission_currency")
    return {
        "day": at.date(),
        **{k: getattr(e, k) for k in (*keep, *more)},
        "time": at,
        "realized_pnl": e.realized_pnl,
    }


def _difference(d: dict[str, Any]) -> dict[str, Any]:
    first = _utc(d["first_seen"])
    return {
        "day": first.date(),
        **{k: d[k] for k in ("kind", "subject", "key", "account", "con_id", "detail")},
        "first_seen": first,
        "last_seen": _utc(d["last_seen"]),
    }
