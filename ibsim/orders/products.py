"""What each product lets an order be, beyond its order type: IB's rules per security type.

- **Sizes.** An instrument with its own size rules (contract details' minSize and
  sizeIncrement: bonds in whole bonds of $1,000 face, a fund in thousandths of a share, crypto
  in 10**-8 of a coin from 0.0001) refuses a quantity below the minimum or off the increment.
- **Crypto on PAXOS** (IB's cryptocurrency trading pages; Paxos's order rules): a market buy is
  for an amount of money (`cashQty`), every sell and every other order for a quantity of coins;
  the time in force is IOC, GTC or Minutes (there is no DAY in a market that never closes).
  A cash buy is sized when it is placed: the cash over that second's ask, down to the size
  increment (IB's own sizing of a cash order is not public: an approximation). Minutes is worked
  as GTC: its duration is not read.
- **A mutual fund** takes market orders only, for the day: they fill at the NAV, which is the
  fund's quote all day (ibsim.market.prices).
- **Cash quantity** is refused on anything but crypto (IB also takes it for forex conversions,
  which the gateway does not simulate).

Pure: the engine (ibsim.orders.engine) applies it before the order-type checks.
"""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal

from ibsim.accounts.book import UNSET, Order
from ibsim.market.instruments import Instrument
from ibsim.market.quotes import Quote
from ibsim.orders.matching import Reject, rejected

CRYPTO_TIFS = ("IOC", "GTC", "MINUTES")
CRYPTO_ORDER_TYPES = ("LMT", "MKT", "STP", "STP LMT")


def has_cash_qty(order: Order) -> bool:
    return 0 < order.cash_qty < UNSET


def sized(order: Order, inst: Instrument, quote: Quote) -> Order:
    """The order with its quantity: a crypto cash buy's cash over the ask, down to the size
    increment; any other order as it is."""
    if not (has_cash_qty(order) and inst.sec_type == "CRYPTO" and order.action == "BUY"):
        return order
    step = Decimal(inst.size_rules[1]) if inst.size_rules else Decimal(1)
    units = math.floor(Decimal(repr(order.cash_qty)) / Decimal(repr(quote.ask)) / step)
    return replace(order, quantity=float(units * step))


def check(order: Order, inst: Instrument) -> Reject | None:
    """IB's refusal of an order the product does not take, or None."""
    if inst.sec_type == "CRYPTO":
        found = _check_crypto(order)
    elif inst.sec_type == "FUND" and (order.order_type != "MKT" or order.tif != "DAY"):
        found = rejected("A mutual fund order is a market order for the day (MKT, DAY).")
    elif has_cash_qty(order):
        found = rejected("A cash quantity is taken on cryptocurrency buy orders only.")
    elif order.tif == "MINUTES":
        found = rejected("The time in force Minutes is for cryptocurrency orders.")
    else:
        found = None
    return found or _check_size(order, inst)


def _check_crypto(order: Order) -> Reject | None:
    if order.order_type not in CRYPTO_ORDER_TYPES:
        return rejected(
            f"The order type {order.order_type} is not available for cryptocurrency; use "
            f"{', '.join(CRYPTO_ORDER_TYPES)}."
        )
    if order.tif not in CRYPTO_TIFS:
        return rejected(
            f"The time in force {order.tif} is not available for cryptocurrency; use "
            f"{', '.join(CRYPTO_TIFS)}."
        )
    cash = has_cash_qty(order)
    if order.action == "SELL" and cash:
        return rejected("A cryptocurrency sell order is for a quantity, not a cash quantity.")
    if cash and order.order_type != "MKT":
        return rejected("A cash quantity is taken on cryptocurrency market buy orders only.")
    if order.action == "BUY" and order.order_type == "MKT" and not cash:
        return rejected("A cryptocurrency market buy order is for a cash quantity (cashQty).")
    return None


def _check_size(order: Order, inst: Instrument) -> Reject | None:
    if not inst.size_rules or order.quantity <= 0:
        return None  # a zero size is the order-type checks' refusal
    min_size, increment = (Decimal(x) for x in inst.size_rules[:2])
    quantity = Decimal(repr(order.quantity))
    if quantity < min_size:
        return rejected(f"The order size {quantity} is below the minimum size {min_size}.")
    if quantity % increment:
        return rejected(f"The order size {quantity} is not a multiple of the size increment "
                        f"{increment}.")  # fmt: skip
    return None
