"""`ibw order place|cancel|cancel-all|unblock|modify|list|status`: orders through the journal.

These commands only write intents, cancels and modifications into the order journal (and read
it back); the running `ibw live` service is the only process that talks to the gateway, and
sends what they wrote within a fraction of a second. A symbol is resolved to its conId through
the warehouse's security master; `--con-id` skips the lookup. `place --what-if` is the one
exception: it asks the trading login's gateway for IB's margin and commission preview and
journals nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from engines.gateways_file import load_logins
from ibkr.client import IBClient
from ibkr.errors import one_sentence
from ibkr.exceptions import IBWError
from ibkr.gateways import live_logins
from live.api import cancel, cancel_all, modify, status, submit, unblock
from live.intents import ORDER_TYPES, OrderIntent
from live.journal import IntentRow, Journal
from live.safety import is_paper_account
from warehouse.layout import home as default_home
from warehouse.parquet import read_dataset

OPEN_STATES = ("new", "sending", "working")


class OrderCommandError(IBWError):
    """A command line that cannot become an order (unknown symbol, no account)."""


def add_order_commands(commands: argparse._SubParsersAction) -> None:
    """Register `order` and its subcommands on the `ibw` subcommands."""
    order = commands.add_parser("order", help="place, modify and cancel orders (via `ibw live`)")
    order.add_argument("--home", default=str(default_home()), help="warehouse ($IBW_HOME)")
    sub = order.add_subparsers(dest="order_command", required=True)

    place = sub.add_parser(
        "place", help="journal a new order: SYMBOL QUANTITY, or QUANTITY --con-id"
    )
    place.add_argument("words", nargs="+", metavar="SYMBOL QUANTITY")
    place.add_argument("--con-id", type=int, help="the contract's IB conId (skips the symbol)")
    place.add_argument("--action", choices=["BUY", "SELL"], type=str.upper, default="BUY")
    place.add_argument("--cash", action="store_true",
                       help="QUANTITY is an amount of money in the contract's currency (IB's "
                       "cashQty: how crypto market buys are sized)")  # fmt: skip
    place.add_argument("--type", dest="order_type", default="MKT", type=str.upper,
                       help=f"one of {', '.join(sorted(ORDER_TYPES))}")  # fmt: skip
    place.add_argument("--limit", type=float, help="limit price")
    place.add_argument("--aux", type=float, help="stop, trigger or trailing amount")
    place.add_argument("--trailing-percent", type=float)
    place.add_argument("--tif", default="DAY", type=str.upper, help="DAY, GTC or IOC")
    place.add_argument("--outside-rth", action="store_true")
    place.add_argument("--exchange", help="default SMART for stocks, else the listing exchange")
    place.add_argument("--account", help="default $IBW_ACCOUNT or the only paper account")
    place.add_argument("--algo", default="", help="Adaptive, Vwap or Twap")
    place.add_argument("--algo-param", action="append", default=[], metavar="K=V")
    place.add_argument("--fa-group", default="", help="an FA allocation group")
    place.add_argument("--fa-method", default="", help="the group's method for this order")
    place.add_argument("--fa-percentage", default="", help="IB's faPercentage (PctChange)")
    place.add_argument("--fa-profile", default="", help="an FA allocation profile")
    place.add_argument(
        "--what-if",
        action="store_true",
        help="ask IB for the order's margin and commission; place and journal nothing",
    )
    place.add_argument("--key", help="the order's unique key (default: generated)")
    place.set_defaults(run=_place)

    cancel_cmd = sub.add_parser("cancel", help="ask for an order to be cancelled")
    cancel_cmd.add_argument("key")
    cancel_cmd.set_defaults(run=_cancel)

    kill = sub.add_parser(
        "cancel-all", help="the kill switch: cancel every open order (IB's global cancel)"
    )
    kill.add_argument("--reason", default="manual", help="journaled with the request")
    kill.set_defaults(run=_cancel_all)

    unblock_cmd = sub.add_parser(
        "unblock", help="lift an account's risk blocks: its orders are sent again"
    )
    unblock_cmd.add_argument("account")
    unblock_cmd.add_argument("--reason", required=True, help="journaled with the lift")
    unblock_cmd.set_defaults(run=_unblock)

    modify_cmd = sub.add_parser("modify", help="new quantity or prices for a working order")
    modify_cmd.add_argument("key")
    modify_cmd.add_argument("--quantity", type=float)
    modify_cmd.add_argument("--limit", type=float)
    modify_cmd.add_argument("--aux", type=float)
    modify_cmd.set_defaults(run=_modify)

    list_cmd = sub.add_parser("list", help="the journal's orders")
    list_cmd.add_argument("--open", action="store_true", help="only orders not finished")
    list_cmd.set_defaults(run=_list)

    status_cmd = sub.add_parser("status", help="one order: state, events, fills, commissions")
    status_cmd.add_argument("key")
    status_cmd.set_defaults(run=_status)


def _guarded(fn):
    """Every order command ends in one sentence and exit code 1 on failure, never a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            fn(args, Path(args.home).resolve(), Console(soft_wrap=True))
        except Exception as exc:
            Console(stderr=True, soft_wrap=True).print(
                f"[red]ibw order {args.order_command}:[/red] {one_sentence(exc)}", markup=True
            )
            return 1
        return 0

    return run


@_guarded
def _place(args: argparse.Namespace, home: Path, out: Console) -> None:
    words = list(args.words)
    expected = 1 if args.con_id else 2
    if len(words) != expected:
        raise OrderCommandError(
            f"expected {'QUANTITY' if args.con_id else 'SYMBOL QUANTITY'}, got {' '.join(words)!r}",
            "e.g. `ibw order place AAPL 10 --type LMT --limit 180` or `--con-id 265598 10`",
        )
    try:
        quantity = float(words[-1])
    except ValueError:
        raise OrderCommandError(
            f"quantity {words[-1]!r} is not a number", "give the quantity after the symbol"
        ) from None
    con_id, exchange, label = _contract(home, args.con_id, words[0] if not args.con_id else "")
    params = []
    for pair in args.algo_param:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise OrderCommandError(
                f"algo parameter {pair!r} is not K=V", "write e.g. maxPctVol=0.1"
            )
        params.append((name, value))
    intent = OrderIntent(
        key=args.key or _new_key(),
        account=_account(home, args.account, bool(args.fa_group or args.fa_profile)),
        con_id=con_id,
        exchange=args.exchange or exchange,
        action=args.action,
        quantity=0.0 if args.cash else quantity,
        cash_quantity=quantity if args.cash else None,
        order_type=args.order_type,
        limit_price=args.limit,
        aux_price=args.aux,
        trailing_percent=args.trailing_percent,
        tif=args.tif,
        outside_rth=args.outside_rth,
        algo=args.algo,
        algo_params=tuple(params),
        fa_group=args.fa_group,
        fa_method=args.fa_method,
        fa_percentage=args.fa_percentage,
        fa_profile=args.fa_profile,
    )
    where = (
        f"group {intent.fa_group}" if intent.fa_group
        else f"profile {intent.fa_profile}" if intent.fa_profile
        else intent.account
    )  # fmt: skip
    if args.what_if:
        out.print(_what_if(intent, f"{_summary(intent)} {label} on {where}"))
        return
    row = submit(intent, home)
    out.print(
        f"Order {row.key} journaled ({row.state}): {_summary(intent)} {label} on {where}; "
        "the running `ibw live` service sends it."
    )


@_guarded
def _cancel(args: argparse.Namespace, home: Path, out: Console) -> None:
    row = cancel(args.key, home)
    if row.state in ("refused", "done"):
        out.print(
            f"Order {row.key} is already {row.state} ({row.status or 'never sent'}); "
            "nothing to cancel."
        )
    else:
        out.print(f"Order {row.key}: cancel requested; the running `ibw live` service sends it.")


@_guarded
def _cancel_all(args: argparse.Namespace, home: Path, out: Console) -> None:
    count = cancel_all(args.reason, home)
    out.print(
        f"Kill switch: {count} open order(s) of the journal asked to cancel, and IB's global "
        "cancel (every open order of the login, whoever placed it) queued; the running `ibw "
        "live` service sends it before any new order."
    )


@_guarded
def _unblock(args: argparse.Namespace, home: Path, out: Console) -> None:
    lifted = unblock(args.account, args.reason, home)
    limits = ", ".join(b.limit for b in lifted)
    out.print(
        f"Account {args.account}: {len(lifted)} risk block(s) lifted ({limits}); its orders are "
        "sent again. Still past a limit, it stays unblocked until it comes back within it and "
        "breaches again (a restart of `ibw live` blocks it again at once)."
    )


@_guarded
def _modify(args: argparse.Namespace, home: Path, out: Console) -> None:
    row = modify(args.key, args.quantity, args.limit, args.aux, home)
    out.print(
        f"Order {row.key}: modification to {_summary(row.effective)} requested; "
        "the running `ibw live` service sends it."
    )


@_guarded
def _list(args: argparse.Namespace, home: Path, out: Console) -> None:
    with Journal.open(home) as journal:
        rows = journal.intents(OPEN_STATES if args.open else None)
    table = Table()
    for column in ("key", "state", "status", "order", "account", "filled", "avg price", "updated"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.key, r.state, r.status or "", _summary(r.effective),
            r.intent.account or r.intent.fa_group, _num(r.filled), _num(r.avg_fill_price),
            r.updated_at[:19],
        )  # fmt: skip
    out.print(table)
    out.print(f"{len(rows)} {'open ' if args.open else ''}order{'' if len(rows) == 1 else 's'}.")


@_guarded
def _status(args: argparse.Namespace, home: Path, out: Console) -> None:
    found = status(args.key, home)
    row: IntentRow = found["order"]
    out.print(
        f"Order {row.key}: {row.state}, IB status {row.status or '-'}, {_summary(row.effective)}, "
        f"filled {_num(row.filled) or 0}, avg {_num(row.avg_fill_price) or '-'}, "
        f"order id {row.order_id or '-'}, permId {row.perm_id or '-'}"
        + (f"; {row.reason}" if row.reason else "")
    )
    events = Table(title="events")
    for column in ("at", "event", "detail"):
        events.add_column(column)
    for e in found["events"]:
        events.add_row(e["at"][:23], e["kind"], e["detail"])
    out.print(events)
    fills = Table(title="fills")
    for column in ("exec id", "time", "account", "side", "shares", "price", "commission", "note"):
        fills.add_column(column)
    for f in found["fills"]:
        commission = (
            f"{f.commission:g} {f.commission_currency}" if f.commission is not None else "pending"
        )
        note = f"corrected by {f.superseded_by}" if f.superseded_by else ""
        fills.add_row(
            f.exec_id, f.time[:19], f.account, f.side, _num(f.shares), _num(f.price),
            commission, note,
        )  # fmt: skip
    out.print(fills)


def _summary(intent: OrderIntent) -> str:
    prices = [
        f"{n} {v:g}" for n, v in (("limit", intent.limit_price), ("aux", intent.aux_price)) if v
    ]
    size = f"{intent.cash_quantity:g} in cash" if intent.by_cash else f"{intent.quantity:g}"
    return " ".join([intent.action, size, intent.order_type, *prices, intent.tif])


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _new_key() -> str:
    return f"ibw-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _contract(home: Path, con_id: int | None, symbol: str) -> tuple[int, str, str]:
    """(conId, exchange, label) from the security master's current versions."""
    master = read_dataset(home, "security_master")
    current = master.filter(pl.col("valid_to").is_null()) if master.width else master
    if con_id:
        found = current.filter(pl.col("con_id") == con_id) if current.width else current
        if found.height:
            return con_id, _exchange(found.row(0, named=True)), found["symbol"][0]
        return con_id, "SMART", f"conId {con_id}"
    wanted = symbol.upper()
    found = (
        current.filter((pl.col("symbol") == wanted) | (pl.col("local_symbol") == wanted))
        if current.width
        else current
    )
    if found.height == 0:
        raise OrderCommandError(
            f"{symbol} is not in the security master",
            "run `ibw universe` (with the symbol in the universe file) or give --con-id",
        )
    if found.height > 1:
        stocks = found.filter(pl.col("sec_type") == "STK")
        if stocks.height != 1:
            choices = ", ".join(
                f"{r['local_symbol']} {r['sec_type']} {r['con_id']}"
                for r in found.iter_rows(named=True)
            )
            raise OrderCommandError(
                f"{symbol} matches several contracts ({choices})", "give --con-id"
            )
        found = stocks
    row = found.row(0, named=True)
    return (
        int(row["con_id"]),
        _exchange(row),
        f"{row['local_symbol'] or row['symbol']} ({row['con_id']})",
    )


def _exchange(row: dict) -> str:
    return "SMART" if row["sec_type"] == "STK" else row["exchange"] or "SMART"


def _what_if(intent: OrderIntent, described: str) -> str:
    """IB's preview of the order (a whatIf placeOrder on the trading login), as one line."""
    trading, _ = live_logins(load_logins())
    client = IBClient.open(trading.settings(), f"what-if {intent.key}")
    try:
        preview = client.ib.whatIfOrderAsync(intent.to_contract(), intent.to_order())
        state = client.run(client.call(preview, f"order {intent.key}"))
    finally:
        client.close()
    money = state.numeric(2)

    def amount(value: float | None) -> str:
        return "unknown" if value is None else f"{value:,.2f}"

    low, high = amount(money.minCommission), amount(money.maxCommission)
    commission = amount(money.commission) if money.commission is not None else f"{low} to {high}"
    return (
        f"What if {described}: initial margin {amount(money.initMarginChange)} (to "
        f"{amount(money.initMarginAfter)}), maintenance margin "
        f"{amount(money.maintMarginChange)}, equity with loan "
        f"{amount(money.equityWithLoanChange)}, commission {commission} "
        f"{state.commissionCurrency}".rstrip()
        + (f"; IB warns: {state.warningText}" if state.warningText else "")
        + ". Nothing was placed or journaled."
    )


def _account(home: Path, given: str | None, allocation: bool) -> str:
    """--account, else $IBW_ACCOUNT, else the one paper account the warehouse has seen."""
    if given or os.environ.get("IBW_ACCOUNT"):
        return given or os.environ["IBW_ACCOUNT"]
    if allocation:
        return ""
    seen = read_dataset(home, "account_summary")
    accounts = sorted(set(seen["account"].to_list())) if "account" in seen.columns else []
    paper = [a for a in accounts if is_paper_account(a)]
    if len(paper) == 1:
        return paper[0]
    raise OrderCommandError(
        "no account was given"
        + (f" and the warehouse knows {len(paper)} paper accounts" if paper else ""),
        "give --account or set IBW_ACCOUNT",
    )
