"""The accounts behind the gateway: cash, positions, the day's executions and orders, and the FA
configuration, seeded from a scenario so tests know every value the gateway will report.

A scenario is a mapping (a YAML file for `ibw gateway --scenario`):

    master: F1234567            # optional: an FA login; its sub-accounts are `accounts`
    accounts:
      - {id: DU111, alias: Growth, base_currency: USD, cash: {USD: 100000, EUR: 5000}}
    positions:
      - {account: DU111, con_id: 265598, quantity: 100, avg_cost: 180.5}
    executions:                 # today's fills; commissions may arrive late or be corrected
      - {exec_id: 0001.01, account: DU111, con_id: 265598, side: BOT, shares: 100, price: 180.5,
         time: "2024-07-10T14:00:00Z", order_id: 11, commission: 1.0, commission_delay: 0.5,
         corrected_by: 0001.02}
    open_orders: [{order_id: 21, account: DU111, con_id: 265598, action: BUY, quantity: 10,
                   order_type: LMT, limit_price: 150.0}]
    completed_orders: [...]     # same fields plus status (Filled, Cancelled) and completed_time
    fa: {groups: [{name: G, method: NetLiq, accounts: [DU111, DU222]}],
         profiles: [{name: P, type: 1, allocations: {DU111: 60, DU222: 40}}],
         aliases: {DU111: Growth}}

Valuations (market price, value, P&L, net liquidation) are computed from the synthetic market at
the gateway's now, so they are deterministic too. Owns the state only: the messages that report
it live in `ibsim.handlers` (`portfolio`, `trades` and `fa`). The order engine
(`ibsim.orders.engine`, its fills in `ibsim.orders.fills`) changes it through `put_order`,
`put_execution` and `record_fill`, so everything that reports the Book reports the API's orders
and fills too. Imports only ibsim.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ibsim.market.instruments import Instrument
from ibsim.market.quotes import quote_at

DEFAULT_ACCOUNT = "DU123456"
UNSET = 1.7976931348623157e308  # IB's Double.MAX: "no value"
DONE_STATES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
# An execution's side (BOT, SLD) for an order's action, or for a side as a filter names it
SIDES = {"BUY": "BOT", "BOT": "BOT", "SELL": "SLD", "SLD": "SLD", "SSHORT": "SLD"}
# USD per unit of each currency the scenarios use (a fixed table: FX positions are valued on the
# market, cash conversion only needs to be deterministic)
USD_PER = {"USD": 1.0, "EUR": 1.09, "GBP": 1.27, "JPY": 0.0064, "CHF": 1.12, "CAD": 0.73}


@dataclass(frozen=True)
class Account:
    id: str
    alias: str = ""
    base_currency: str = "USD"
    cash: Mapping[str, float] = field(default_factory=dict)  # currency -> amount


@dataclass(frozen=True)
class Position:
    account: str
    con_id: int
    quantity: float
    avg_cost: float  # per unit, multiplier included, as IB reports averageCost
    realized_pnl: float = 0.0


@dataclass(frozen=True)
class Execution:
    exec_id: str
    account: str
    con_id: int
    side: str  # BOT or SLD
    shares: float
    price: float
    time: datetime  # UTC
    order_id: int
    perm_id: int = 0
    client_id: int = 0
    order_ref: str = ""
    exchange: str = "ISLAND"
    commission: float = 1.0
    commission_currency: str = "USD"
    realized_pnl: float = UNSET
    # seconds after execDetails; -n: held back from the first n reqExecutions answers
    commission_delay: float = 0.0
    corrected_by: str = ""  # the exec_id of a correction that replaces this fill


@dataclass(frozen=True)
class Order:
    order_id: int
    account: str
    con_id: int
    action: str  # BUY or SELL
    quantity: float
    order_type: str = "LMT"
    limit_price: float = 0.0
    aux_price: float = 0.0
    tif: str = "DAY"
    perm_id: int = 0
    client_id: int = 0
    order_ref: str = ""
    status: str = "Submitted"  # open: Submitted, PreSubmitted; completed: Filled, Cancelled
    filled: float = 0.0
    avg_fill_price: float = 0.0
    completed_time: str = ""  # IB's "yyyymmdd hh:mm:ss zone" text for completed orders
    fa_group: str = ""
    fa_method: str = ""
    fa_percentage: str = ""
    # placed through the API (ibsim.orders.engine); a scenario's orders keep the defaults
    outside_rth: bool = False
    oca_group: str = ""
    oca_type: int = 0  # 1 cancel the others, 2 / 3 reduce them
    parent_id: int = 0
    parent_perm_id: int = 0
    transmit: bool = True
    good_till_date: str = ""
    trail_stop_price: float = UNSET  # a TRAIL's current stop
    trailing_percent: float = UNSET
    lmt_price_offset: float = UNSET  # TRAIL LIMIT: the limit's distance from the stop
    algo_strategy: str = ""
    algo_params: tuple[tuple[str, str], ...] = ()
    conditions: tuple[tuple[str, ...], ...] = ()  # each as placed: its type, then its fields
    conditions_ignore_rth: bool = False
    conditions_cancel_order: bool = False
    last_fill_price: float = 0.0
    why_held: str = ""
    what_if: bool = False
    cash_qty: float = UNSET  # a buy for this much money (crypto), sized when placed
    # whatIf answer: margin before/change/after (init, maint, equity) x 3, then commission
    preview: tuple[float, ...] = ()

    @property
    def remaining(self) -> float:
        return max(self.quantity - self.filled, 0.0)

    @property
    def done(self) -> bool:
        return self.status in DONE_STATES


@dataclass(frozen=True)
class FAGroup:
    name: str
    method: str  # NetLiq, AvailableEquity, Equal, ContractsOrShares, MonetaryAmount, Percent, Ratio
    accounts: tuple[str, ...]
    amounts: tuple[float, ...] = ()  # per account, for the user-specified methods


@dataclass(frozen=True)
class FAProfile:
    name: str
    type: int  # 1 percentages, 2 ratios, 3 shares
    allocations: Mapping[str, float]


@dataclass
class Book:
    """Every account the login sees, and what is in them. Mutable: replaceFA changes it."""

    accounts: tuple[Account, ...]
    master: str = ""
    positions: tuple[Position, ...] = ()
    executions: tuple[Execution, ...] = ()
    open_orders: tuple[Order, ...] = ()
    completed_orders: tuple[Order, ...] = ()
    groups: tuple[FAGroup, ...] = ()
    profiles: tuple[FAProfile, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def single(cls, account: str = DEFAULT_ACCOUNT) -> Book:
        """A paper account with cash and nothing else: the default gateway."""
        return cls((Account(account, cash={"USD": 1_000_000.0}),))

    @classmethod
    def from_scenario(cls, data: Mapping[str, Any]) -> Book:
        fa = data.get("fa") or {}
        accounts = tuple(
            Account(str(a["id"]), str(a.get("alias", "")), str(a.get("base_currency", "USD")),
                    {str(k): float(v) for k, v in (a.get("cash") or {}).items()})
            for a in data["accounts"]
        )  # fmt: skip
        return cls(
            accounts=accounts,
            master=str(data.get("master", "")),
            positions=tuple(Position(**p) for p in data.get("positions", ())),
            executions=tuple(
                Execution(**{**e, "exec_id": str(e["exec_id"]), "time": _utc(e["time"])})
                for e in data.get("executions", ())
            ),
            open_orders=tuple(Order(**o) for o in data.get("open_orders", ())),
            completed_orders=tuple(Order(**o) for o in data.get("completed_orders", ())),
            groups=tuple(
                FAGroup(
                    g["name"],
                    g["method"],
                    tuple(g["accounts"]),
                    tuple(float(x) for x in g.get("amounts", ())),
                )
                for g in fa.get("groups", ())
            ),
            profiles=tuple(
                FAProfile(p["name"], int(p["type"]), dict(p["allocations"]))
                for p in fa.get("profiles", ())
            ),
            aliases=dict(fa.get("aliases") or {a.id: a.alias for a in accounts if a.alias}),
        )

    # ----------------------------------------------------------------- who
    @property
    def managed(self) -> tuple[str, ...]:
        """What managedAccounts lists: the master first for an FA login, then every account."""
        return ((self.master,) if self.master else ()) + tuple(a.id for a in self.accounts)

    def account_ids(self, wanted: str) -> tuple[str, ...]:
        """The accounts a request names: one, all ("All", "" or the master + "A"), or a group."""
        every = tuple(a.id for a in self.accounts)
        if wanted in ("", "All", self.master, f"{self.master}A") and wanted != "A":
            return every
        for group in self.groups:
            if group.name == wanted:
                return tuple(a for a in group.accounts if a in every)
        return (wanted,) if wanted in every else ()

    def account(self, account_id: str) -> Account:
        return next(a for a in self.accounts if a.id == account_id)

    # ----------------------------------------------------------------- valuations
    def positions_of(self, account_id: str) -> tuple[Position, ...]:
        return tuple(p for p in self.positions if p.account == account_id)

    # ---------------------------------------------------- changes (ibsim.orders: engine, fills)
    def put_order(self, order: Order) -> None:
        """Store an order's latest state under its permId: a live one stays (or joins) the open
        orders in its place, a finished one moves to the completed orders."""
        others = tuple(o for o in self.completed_orders if o.perm_id != order.perm_id)
        if order.done:
            self.open_orders = tuple(o for o in self.open_orders if o.perm_id != order.perm_id)
            self.completed_orders = (*others, order)
            return
        found = [i for i, o in enumerate(self.open_orders) if o.perm_id == order.perm_id]
        if found:
            self.open_orders = (
                *self.open_orders[: found[0]],
                order,
                *self.open_orders[found[0] + 1 :],
            )
        else:
            self.open_orders = (*self.open_orders, order)
        self.completed_orders = others

    def put_execution(self, ex: Execution) -> None:
        """Store a fill, or replace the one with its execId (a commission that became known)."""
        kept = tuple(e for e in self.executions if e.exec_id != ex.exec_id)
        if len(kept) == len(self.executions):
            self.executions = (*self.executions, ex)
        else:
            self.executions = tuple(ex if e.exec_id == ex.exec_id else e for e in self.executions)

    def record_fill(self, ex: Execution, inst: Instrument | None) -> Execution:
        """Book one fill: the account's position (quantity; average cost with the commission, as
        IB reports it; realized P&L net of the commission when it reduces the position), its cash
        (futures settle their P&L daily, so only the commission moves cash), and the execution
        itself, returned with its realized P&L (UNSET when it only opens)."""
        mult = inst.value_multiplier if inst is not None else 1.0
        signed = ex.shares if ex.side == "BOT" else -ex.shares
        index = next(
            (i for i, p in enumerate(self.positions)
             if p.account == ex.account and p.con_id == ex.con_id), None,
        )  # fmt: skip
        old = self.positions[index] if index is not None else Position(ex.account, ex.con_id, 0, 0)
        qty, avg, cost = float(old.quantity), float(old.avg_cost), ex.price * mult
        realized = UNSET
        if qty == 0 or (qty > 0) == (signed > 0):  # opens or adds
            new_avg = (abs(qty) * avg + abs(signed) * cost + ex.commission) / abs(qty + signed)
        else:
            closed = min(abs(signed), abs(qty))
            realized = round(closed * (cost - avg) * (1 if qty > 0 else -1) - ex.commission, 2)
            flipped = abs(signed) > abs(qty)
            new_avg = cost if flipped else (avg if qty + signed else 0.0)
        total = float(old.realized_pnl) + (0.0 if realized == UNSET else realized)
        position = Position(ex.account, ex.con_id, qty + signed, new_avg, round(total, 2))
        if index is None:
            self.positions = (*self.positions, position)
        else:
            self.positions = (*self.positions[:index], position, *self.positions[index + 1 :])
        flow = 0.0 if inst is not None and inst.sec_type == "FUT" else -signed * cost
        currency = inst.currency if inst is not None else ex.commission_currency
        flows = ((currency, flow), (ex.commission_currency, -ex.commission))
        self.accounts = tuple(
            replace(a, cash=_moved(a.cash, flows)) if a.id == ex.account else a
            for a in self.accounts
        )
        booked = replace(ex, realized_pnl=realized)
        self.put_execution(booked)
        return booked


def mark_price(inst: Instrument, now: datetime) -> float:
    """The instrument's price at `now`: the mid of the quote a client sees in that second
    (ibsim.market.quotes, which the ticks, the bars and the fills read too); outside a session,
    that of the session's last second. Half a tick is one decimal more than the tick grid."""
    return round(quote_at(inst, int(now.timestamp())).mid, inst.decimals + 1)


def in_usd(amount: float, currency: str) -> float:
    return amount * USD_PER.get(currency, 1.0)


def _moved(cash: Mapping[str, float], flows: Iterable[tuple[str, float]]) -> dict[str, float]:
    out = dict(cash)
    for currency, amount in flows:
        out[currency] = round(out.get(currency, 0.0) + amount, 2)
    return out


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
