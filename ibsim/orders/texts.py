"""IB's codes and texts for what happens to an order: cancellations, refused modifications,
unknown or duplicate ids, and the warnings an order placed out of its hours gets."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ibsim.accounts import valuation
from ibsim.accounts.book import Order
from ibsim.market.calendars import VENUES
from ibsim.market.instruments import Instrument
from ibsim.orders.matching import Reject

CANCELLED = "Order Canceled - reason:"
MISMATCH = Reject(
    105,
    "Order being modified does not match the original order: keep its contract and action, and "
    "a quantity above the filled quantity.",
)
OUTSIDE_RTH_IGNORED = Reject(
    2109,
    "Order Event Warning: Attribute 'Outside Regular Trading Hours' is ignored based on the order "
    "type and destination. PlaceOrder is now being processed.",
)


def duplicate_id(order_id: int) -> Reject:
    return Reject(
        103, f"Duplicate order id {order_id}: use an id above every id this client used (reqIds)."
    )


def not_found(order_id: int) -> Reject:
    return Reject(10147, f"OrderId {order_id} that needs to be cancelled is not found.")


def not_cancellable(order: Order) -> Reject:
    return Reject(
        10148,
        f"OrderId {order.order_id} that needs to be cancelled cannot be cancelled, state: "
        f"{order.status}.",
    )


def not_modifiable(order: Order) -> Reject:
    if order.status == "Filled":
        return Reject(104, f"Can't modify a filled order: order {order.order_id} is filled.")
    return Reject(
        104, f"Can't modify order {order.order_id}: it is {order.status}; place a new order."
    )


def waits_for_open(order: Order, inst: Instrument, opens: int) -> Reject:
    """399: an order placed outside the hours it may work in waits for the session's open."""
    venue = VENUES[inst.venue]
    when = datetime.fromtimestamp(opens, ZoneInfo(venue.tz))
    return Reject(399, (
        f"Order Message: {order.action} {valuation.quantity_text(order.quantity)} "
        f"{inst.local_symbol} {inst.exchange} Warning: your order will not be placed at the "
        f"exchange until {when:%Y-%m-%d %H:%M:%S} {venue.ib_tz}"
    ))  # fmt: skip
