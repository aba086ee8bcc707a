"""Order-type logic, pure: whether an order's fields make sense (and IB's refusals when they do
not), when a working order triggers, and at what price and how much of it can fill against the
quote of one second.

When an order may work (sessions, expiry, the closing auction, an algo's window) is
`ibsim.orders.order_times`; its conditions are `ibsim.orders.conditions`. No state of its own:
the engine (ibsim.orders.engine) keeps each order's trailing stop and trigger and passes them
in, and its fills (ibsim.orders.fills) take the sizes a fill uses off what the second displays.
The market is `ibsim.market.quotes.Quote`: a buy takes the ask, a sell the bid, at most the
displayed size; a price pegged inside the spread (REL) fills when a trade prints at or through
it, at most the size traded. Prices are kept on the instrument's tick grid (IB's order type
pages for the fields each type needs). Imports only ibsim.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ibsim.accounts.book import UNSET
from ibsim.market.quotes import Quote

MARKET, LIMIT = (
    ("MKT", "MOC", "STP", "MIT", "TRAIL"),
    ("LMT", "LOC", "STP LMT", "LIT", "TRAIL LIMIT"),
)
TRIGGERED = frozenset({"STP", "STP LMT", "MIT", "LIT", "TRAIL", "TRAIL LIMIT"})
TRAILING = frozenset({"TRAIL", "TRAIL LIMIT"})
AUCTION = frozenset({"MOC", "LOC"})  # executed at the regular session's close
ORDER_TYPES = (*MARKET, *LIMIT, "REL", "MIDPRICE")
TIFS = ("DAY", "GTC", "IOC", "GTD", "FOK", "MINUTES")  # MINUTES: crypto (ibsim.orders.products)
ALGOS = ("Adaptive", "Vwap", "Twap")  # simulated; they work MKT or LMT orders
OTHER_IB_ALGOS = ("ArrivalPx", "DarkIce", "PctVol", "ClosePx", "AD", "BalanceImpactRisk",
                  "MinImpact", "Jefferies", "CSFB")  # fmt: skip


class Reject(NamedTuple):
    """Why IB refuses an order: its error code and text."""

    code: int
    text: str


def rejected(reason: str) -> Reject:
    return Reject(201, f"Order rejected - reason:{reason}")


class Refused(Exception):
    """Raised while an order is checked or planned: IB refuses it with `reject`."""

    def __init__(self, reject: Reject) -> None:
        super().__init__(reject.text)
        self.reject = reject


MUST_ALLOCATE = Reject(
    436, "You must specify an allocation (either a single account, group, or profile)."
)
OFF_GRID = Reject(
    110, "The price does not conform to the minimum price variation for this contract."
)
ZERO_SIZE = Reject(434, "The order size cannot be zero.")
NO_ALGO = Reject(439, "Order processing failed. Algorithm definition not found.")


class Terms(NamedTuple):
    """What the order-type logic reads of an order (prices 0 or UNSET when not given)."""

    action: str  # BUY or SELL
    order_type: str
    quantity: float
    limit: float = 0.0
    aux: float = 0.0  # stop or trigger price; TRAIL: trailing amount; REL: offset
    trailing_percent: float = UNSET
    trail_stop: float = UNSET  # TRAIL: the initial stop the client gave
    lmt_price_offset: float = UNSET  # TRAIL LIMIT
    tif: str = "DAY"
    good_till_date: str = ""
    algo: str = ""

    @property
    def buys(self) -> bool:
        return self.action == "BUY"


def _given(value: float) -> bool:
    return value != 0 and value < UNSET


# ----------------------------------------------------------------------------- validation
def check(terms: Terms, tick: float) -> Reject | None:
    """IB's refusal of an order whose own fields do not make sense, or None."""
    numbers = (terms.quantity, terms.limit, terms.aux, terms.trailing_percent)
    if not all(math.isfinite(x) for x in (*numbers, terms.trail_stop, terms.lmt_price_offset)):
        return rejected("A price or the quantity is not a finite number.")
    if terms.action not in ("BUY", "SELL"):
        return rejected(f"The action {terms.action!r} is not BUY or SELL.")
    if terms.quantity == 0:
        return ZERO_SIZE
    if terms.quantity < 0:
        return rejected("The order quantity must be positive: use the action for the side.")
    kind = terms.order_type
    if kind not in ORDER_TYPES:
        return rejected(
            f"The order type {kind!r} is not simulated by the embedded gateway; use one of "
            f"{', '.join(ORDER_TYPES)}."
        )
    needs = _missing(terms)
    if needs:
        return rejected(needs)
    if any(_given(p) and not on_grid(p, tick) for p in _grid_prices(terms)):
        return OFF_GRID
    return _check_tif(terms) or _check_algo(terms)


def _missing(terms: Terms) -> str:
    kind = terms.order_type
    if kind in LIMIT and kind != "TRAIL LIMIT" and not _given(terms.limit):
        return f"A {kind} order needs a limit price (lmtPrice)."
    if kind in ("STP", "STP LMT", "MIT", "LIT") and not _given(terms.aux):
        return f"A {kind} order needs a trigger price (auxPrice)."
    if kind in TRAILING:
        if not _given(terms.aux) and not 0 < terms.trailing_percent < 100:
            return f"A {kind} order needs a trailing amount (auxPrice) or a trailingPercent."
        if _given(terms.aux) and _given(terms.trailing_percent):
            return f"A {kind} order takes a trailing amount or a trailingPercent, not both."
        if kind == "TRAIL LIMIT" and not terms.lmt_price_offset < UNSET:
            return "A TRAIL LIMIT order needs lmtPriceOffset, the limit's distance from the stop."
    if kind == "REL" and terms.aux < 0:
        return "A REL order's offset (auxPrice) cannot be negative."
    return ""


def _grid_prices(terms: Terms) -> tuple[float, ...]:
    """The prices IB checks against the tick grid: limits and trigger prices."""
    prices = [terms.limit]
    if terms.order_type in ("STP", "STP LMT", "MIT", "LIT"):
        prices.append(terms.aux)
    if terms.order_type in TRAILING and terms.trail_stop < UNSET:
        prices.append(terms.trail_stop)
    return tuple(prices)


def _check_tif(terms: Terms) -> Reject | None:
    tif, kind = terms.tif, terms.order_type
    if tif not in TIFS:
        return rejected(
            f"The time in force {tif!r} is not simulated by the embedded gateway; use "
            f"{', '.join(TIFS)}."
        )
    if kind in AUCTION and tif != "DAY":
        return rejected(
            f"A {kind} order executes at today's close, so its time in force must be DAY."
        )
    if tif in ("IOC", "FOK") and (kind in TRIGGERED or terms.algo in ("Vwap", "Twap")):
        return rejected(f"The time in force {tif} needs an order that can execute at once.")
    if tif == "GTD" and not terms.good_till_date:
        return rejected("A GTD order needs goodTillDate (yyyymmdd hh:mm:ss zone).")
    return None


def _check_algo(terms: Terms) -> Reject | None:
    if not terms.algo:
        return None
    if terms.algo in OTHER_IB_ALGOS:
        return rejected(
            f"The {terms.algo} algo is not simulated by the embedded gateway; use one of "
            f"{', '.join(ALGOS)}."
        )
    if terms.algo not in ALGOS:
        return NO_ALGO
    if terms.order_type not in ("MKT", "LMT"):
        return rejected(f"The {terms.algo} algo works MKT or LMT orders, not {terms.order_type}.")
    return None


# ----------------------------------------------------------------------------- the grid
def on_grid(price: float, tick: float) -> bool:
    steps = price / tick
    return abs(steps - round(steps)) < 1e-6


def to_grid(price: float, tick: float, up: bool) -> float:
    """The nearest price on the tick grid at or above (`up`) or at or below `price`."""
    steps = price / tick
    whole = math.ceil(steps - 1e-9) if up else math.floor(steps + 1e-9)
    return round(whole * tick, 10)


# ----------------------------------------------------------------------------- triggers
def trail(terms: Terms, stop: float | None, quote: Quote, tick: float) -> float:
    """A trailing stop after this second: it starts at the client's trailStopPrice (or the
    trailing distance from the last price) and only ever moves in the order's favour."""
    distance = terms.aux if _given(terms.aux) else quote.last * terms.trailing_percent / 100
    if terms.buys:
        fresh = to_grid(quote.last + distance, tick, up=True)
        start = terms.trail_stop if terms.trail_stop < UNSET else fresh
        return min(stop if stop is not None else start, fresh)
    fresh = to_grid(quote.last - distance, tick, up=False)
    start = terms.trail_stop if terms.trail_stop < UNSET else fresh
    return max(stop if stop is not None else start, fresh)


def triggered(terms: Terms, stop: float | None, quote: Quote) -> bool:
    """Whether a stop, if-touched or trailing order is elected by this second's last price."""
    last, kind = quote.last, terms.order_type
    if kind in TRAILING:
        level = stop if stop is not None else terms.aux
        return last >= level if terms.buys else last <= level
    if kind in ("STP", "STP LMT"):
        return last >= terms.aux if terms.buys else last <= terms.aux
    if kind in ("MIT", "LIT"):
        return last <= terms.aux if terms.buys else last >= terms.aux
    return True


def elected(terms: Terms, stop: float | None, tick: float) -> tuple[str, float]:
    """What a triggered order works as: (MKT or LMT, its limit). TRAIL LIMIT's limit is the stop
    less (sells) or plus (buys) lmtPriceOffset."""
    kind = terms.order_type
    if kind == "TRAIL LIMIT" and stop is not None:
        offset = terms.lmt_price_offset
        return "LMT", to_grid(stop + offset if terms.buys else stop - offset, tick, not terms.buys)
    if kind in LIMIT:
        return "LMT", terms.limit
    if kind in MARKET:
        return "MKT", 0.0
    return kind, terms.limit


# ----------------------------------------------------------------------------- matching
class Match(NamedTuple):
    """Where an order can fill this second: at `price`, up to `size` from `pool` (the displayed
    "ask" or "bid", or the "last" trades), which other fills in the same second share."""

    price: float
    size: float
    pool: str


def match(terms: Terms, working_as: str, limit: float, quote: Quote, tick: float) -> Match | None:
    """The fill an order working as MKT, LMT, REL or MIDPRICE gets from `quote`, or None."""
    buys = terms.buys
    far = (
        Match(quote.ask, quote.ask_size, "ask") if buys else Match(quote.bid, quote.bid_size, "bid")
    )
    capped = _given(limit)
    if working_as == "MKT":
        return far
    if working_as == "LMT":
        return far if (far.price <= limit if buys else far.price >= limit) else None
    if working_as == "MIDPRICE":
        mid = to_grid(quote.mid, tick, up=buys)
        if capped and (mid > limit if buys else mid < limit):
            return None
        return far._replace(price=mid)
    if working_as == "REL":
        return _relative(terms, limit, quote, tick, far)
    return None


def _relative(terms: Terms, limit: float, quote: Quote, tick: float, far: Match) -> Match | None:
    """REL: pegged to the same side (bid + offset for a buy, ask - offset for a sell), never
    past the limit; marketable it takes the far side, else it fills when a trade prints at or
    through its price."""
    buys, offset = terms.buys, max(terms.aux, 0.0)
    peg = (
        to_grid(quote.bid + offset, tick, up=False)
        if buys
        else to_grid(quote.ask - offset, tick, up=True)
    )
    if _given(limit):
        peg = min(peg, limit) if buys else max(peg, limit)
    if (peg >= far.price) if buys else (peg <= far.price):
        return far
    if quote.last_size and ((quote.last <= peg) if buys else (quote.last >= peg)):
        return Match(peg, quote.last_size, "last")
    return None


def auction(terms: Terms, close: float) -> bool:
    """Whether a MOC or LOC order takes part in the closing auction that prints at `close`."""
    if terms.order_type == "LOC":
        return close <= terms.limit if terms.buys else close >= terms.limit
    return True
