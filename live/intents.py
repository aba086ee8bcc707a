"""Order intents: what a user wants traded, checked on its own fields, and its ib_async form.

An `OrderIntent` is the unit the journal stores and the order manager sends. Its `key` is the
client's idempotency key: it travels to IB as `orderRef`, which IB keeps on the order and copies
into every execution, so a restarted service finds its orders (and fills) by it. Validation here
covers only the intent itself (types, required prices, combinations); account, size and notional
rules live in `live.safety`. Imports ib_async's order types and the project's exceptions only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ib_async import Contract, Order, TagValue

from ibkr.exceptions import IBWError

ORDER_TYPES = frozenset(
    {"MKT", "LMT", "STP", "STP LMT", "MOC", "LOC", "MIT", "LIT", "TRAIL", "TRAIL LIMIT", "REL"}
    | {"MIDPRICE"}
)
NEEDS_LIMIT = frozenset({"LMT", "STP LMT", "LOC", "LIT", "TRAIL LIMIT"})
NEEDS_AUX = frozenset({"STP", "STP LMT", "MIT", "LIT"})
TRAILING = frozenset({"TRAIL", "TRAIL LIMIT"})
NO_PRICES = frozenset({"MKT", "MOC"})
AT_CLOSE = frozenset({"MOC", "LOC"})
TIFS = frozenset({"DAY", "GTC", "IOC"})
ALGOS = {"": None, "Adaptive": {"MKT", "LMT"}, "Vwap": {"MKT", "LMT"}, "Twap": {"MKT", "LMT"}}
MAX_KEY = 64  # orderRef is free text; keep keys short enough to read in every report


class InvalidIntent(IBWError, ValueError):
    """The intent's own fields do not describe an order IB would accept."""

    default_cause = "the order is not valid"
    default_fix = "correct the order's fields"


@dataclass(frozen=True)
class OrderIntent:
    """One order as the user wants it; prices are None when the order type takes none.

    For TRAIL LIMIT, `limit_price` is the limit offset from the stop (IB's lmtPriceOffset).
    An FA allocation names `fa_group` (or `fa_profile`) and leaves `account` empty or the master.
    IB folded allocation profiles into groups at server version 177 (the TWS API's
    MIN_SERVER_VER_FA_PROFILE_DESUPPORT): from there on a profile goes out in faGroup, and
    ib_async, which negotiates 178, drops faProfile, so the order sends the profile as its group.
    """

    key: str
    account: str
    con_id: int
    action: str
    quantity: float
    order_type: str = "MKT"
    exchange: str = "SMART"
    limit_price: float | None = None
    aux_price: float | None = None
    trailing_percent: float | None = None
    tif: str = "DAY"
    outside_rth: bool = False
    algo: str = ""
    algo_params: tuple[tuple[str, str], ...] = field(default=())
    fa_group: str = ""
    fa_method: str = ""
    fa_profile: str = ""
    fa_percentage: str = ""  # IB's faPercentage, with the PctChange method
    parent_key: str = ""
    oca_group: str = ""
    transmit: bool = True
    cash_quantity: float | None = None  # IB's cashQty: an amount of money (crypto market buys)

    def __post_init__(self) -> None:
        params = self.algo_params
        pairs = params.items() if isinstance(params, Mapping) else params  # a dict is fine too
        object.__setattr__(self, "algo_params", tuple((str(k), str(v)) for k, v in pairs))
        self.validate()

    @property
    def allocation(self) -> bool:
        """An FA order split over sub-accounts by IB."""
        return bool(self.fa_group or self.fa_profile)

    def validate(self) -> None:
        """Raise `InvalidIntent` naming the first field that is wrong and how to fix it."""
        problem = _problem(self)
        if problem:
            cause, fix = problem
            raise InvalidIntent(cause, fix, subject=f"order {self.key or '(no key)'}")

    def modified(
        self,
        quantity: float | None = None,
        limit_price: float | None = None,
        aux_price: float | None = None,
    ) -> OrderIntent:
        """The intent with a new quantity or prices (validated); None keeps a field."""
        changes = {"quantity": quantity, "limit_price": limit_price, "aux_price": aux_price}
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def by_cash(self) -> bool:
        """Sized as an amount of money (IB's cashQty), the quantity left to IB: quantity is 0."""
        return self.cash_quantity is not None

    def quantity_at(self, unit_value: float) -> float:
        """The quantity the order stands for at `unit_value` (price × multiplier): a cash
        order's amount ÷ that value (0 when it is unknown)."""
        if not self.by_cash:
            return self.quantity
        return self.cash_quantity / unit_value if unit_value else 0.0

    def to_contract(self) -> Contract:
        return Contract(conId=self.con_id, exchange=self.exchange)

    def to_order(self, order_id: int = 0, parent_id: int = 0) -> Order:
        """The ib_async Order; `orderRef` is the key so IB keeps it on the order and its fills."""
        order = Order(
            orderId=order_id,
            action=self.action,
            totalQuantity=self.quantity,
            orderType=self.order_type,
            tif=self.tif,
            outsideRth=self.outside_rth,
            account=self.account,
            orderRef=self.key,
            ocaGroup=self.oca_group,
            ocaType=1 if self.oca_group else 0,
            parentId=parent_id,
            transmit=self.transmit,
            faGroup=self.fa_group or self.fa_profile,
            faMethod=self.fa_method,
            faPercentage=self.fa_percentage,
            algoStrategy=self.algo,
            algoParams=[TagValue(k, v) for k, v in self.algo_params],
        )
        if self.order_type == "TRAIL LIMIT":
            order.lmtPriceOffset = self.limit_price
        elif self.limit_price is not None:
            order.lmtPrice = self.limit_price
        if self.aux_price is not None:
            order.auxPrice = self.aux_price
        if self.cash_quantity is not None:
            order.cashQty = self.cash_quantity
        if self.trailing_percent is not None:
            order.trailingPercent = self.trailing_percent
        return order

    def to_json(self) -> str:
        """Canonical JSON: equal intents give equal text (the journal compares it)."""
        data = asdict(self)
        data["algo_params"] = [list(p) for p in self.algo_params]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> OrderIntent:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderIntent:
        """Build from plain data (JSON, CLI); unknown fields are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise InvalidIntent(
                f"unknown field(s) {', '.join(extra)}", f"use only {', '.join(sorted(known))}"
            )
        return cls(**data)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _price_ok(value: float | None) -> bool:
    return value is None or (isinstance(value, int | float) and math.isfinite(value) and value > 0)


def _problem(i: OrderIntent) -> tuple[str, str] | None:
    """(cause, fix) of the first thing wrong with the intent, or None."""
    t = i.order_type
    checks: list[tuple[bool, str, str]] = [
        (
            bool(i.key)
            and len(i.key) <= MAX_KEY
            and i.key.isprintable()
            and i.key == i.key.strip(),
            f"the key must be 1 to {MAX_KEY} printable characters without surrounding spaces",
            "choose another key",
        ),
        (bool(i.account) or i.allocation, "no account is given", "name the account to trade"),
        (
            isinstance(i.con_id, int) and i.con_id > 0,
            f"conId {i.con_id!r} is not a positive integer",
            "give the contract's IB conId",
        ),
        (bool(i.exchange), "no exchange is given", "use SMART or the contract's exchange"),
        (i.action in ("BUY", "SELL"), f"action {i.action!r} is unknown", "use BUY or SELL"),
        (
            i.by_cash or _positive(i.quantity),
            f"quantity {i.quantity!r} is not a positive number",
            "give a quantity above zero",
        ),
        (
            not i.by_cash or (_positive(i.cash_quantity) and i.quantity == 0),
            f"cash quantity {i.cash_quantity!r} with quantity {i.quantity!r} is not an order IB "
            "takes",
            "give a positive cash quantity and quantity 0 (IB sizes the order)",
        ),
        (
            t in ORDER_TYPES,
            f"order type {t!r} is not supported",
            f"use one of {', '.join(sorted(ORDER_TYPES))}",
        ),
        (
            all(_price_ok(p) for p in (i.limit_price, i.aux_price)),
            "prices must be positive numbers",
            "give positive limit and aux prices",
        ),
        (
            t not in NEEDS_LIMIT or i.limit_price is not None,
            f"a {t} order needs a limit price",
            "give --limit",
        ),
        (
            t not in NEEDS_AUX or i.aux_price is not None,
            f"a {t} order needs an aux (stop or trigger) price",
            "give --aux",
        ),
        (
            t not in NO_PRICES or (i.limit_price is None and i.aux_price is None),
            f"a {t} order takes no limit or aux price",
            "drop the prices or use a LMT order",
        ),
        (
            t not in TRAILING or (i.aux_price is None) != (i.trailing_percent is None),
            f"a {t} order needs either a trailing amount (aux) or a trailing percent",
            "give exactly one of the two",
        ),
        (
            i.trailing_percent is None or (t in TRAILING and 0 < i.trailing_percent < 100),
            "a trailing percent needs a TRAIL order and a value between 0 and 100",
            "fix the trailing percent or the order type",
        ),
        (i.tif in TIFS, f"time in force {i.tif!r} is not supported", "use DAY, GTC or IOC"),
        (
            t not in AT_CLOSE or i.tif == "DAY",
            f"a {t} order executes at today's close",
            "use time in force DAY",
        ),
        (
            i.algo in ALGOS,
            f"algo {i.algo!r} is not supported",
            "use Adaptive, Vwap or Twap (IB's spelling)",
        ),
        (
            not i.algo or t in (ALGOS.get(i.algo) or ()),
            f"the {i.algo} algo works on MKT and LMT orders only",
            "use a MKT or LMT order",
        ),
        (bool(i.algo) or not i.algo_params, "algo parameters need an algo", "name the algo"),
        (
            not (i.fa_group and i.fa_profile),
            "an FA order names a group or a profile, not both",
            "drop --fa-group or --fa-profile",
        ),
        (
            not (i.fa_method or i.fa_percentage) or bool(i.fa_group),
            "an FA method or percentage needs an FA group",
            "name the group with --fa-group",
        ),
        (i.parent_key != i.key, "an order cannot be its own parent", "name another parent key"),
    ]
    return next(((cause, fix) for ok, cause, fix in checks if not ok), None)
