"""Order requests on the wire: placeOrder (3), cancelOrder (4) and reqGlobalCancel (58), read
field by field and handed to the gateway's order engine (ibsim.engine), which owns every order
state and sends the news (openOrder, orderStatus, execDetails, commissionReport, errors).

placeOrder at server versions 157-178 (as the clients encode it), the same for ib_async 2.1
(`client.py placeOrder`) and the official ibapi (`client.py placeOrder`): every field is read,
including the count-dependent parts (combo legs, delta-neutral, scale, hedge, algo params, PEG
BENCH, conditions, the PEG BEST / PEG MID / IBKRATS tail), so the fields after them stay aligned.
Each client spells "unset" its own way (`""`, `2147483647`, `1.7976931348623157e+308`, ...);
`FieldReader` reads them all as 0 / false.

cancelOrder: `4 | 1 | orderId | manualCancelOrderTime` (the last from 169); reqGlobalCancel:
`58 | 1`. reqIds (8) is answered in `ibsim.account`.

`News` sends what the engine has to say about an order to the session of the client that placed
it, and IB's texts for order errors are here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ibsim import trades, valuation
from ibsim.book import UNSET, Execution, Order, multiplier
from ibsim.config import GatewayConfig
from ibsim.dispatch import handles
from ibsim.instruments import Instrument
from ibsim.matching import Reject
from ibsim.quotes import Quote
from ibsim.requests import ContractQuery, FieldReader, RequestError
from ibsim.session import ClientSession
from ibsim.sessions import VENUES

if TYPE_CHECKING:
    from ibsim.server import Gateway

# The fields after its type that each order condition has (ib_async order.py, ibapi
# order_condition.py): price, time, margin, execution, volume, percent change.
CONDITION_FIELDS = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}
PEG_BENCH = ("PEG BENCH", "PEGBENCH")


@dataclass(frozen=True)
class Placed:
    """One placeOrder as read: the contract it names and the order (no permId, no status yet)."""

    contract: ContractQuery
    order: Order
    fa_profile: str = ""  # before server version 177 only; later profiles come as faGroup


def _price(msg: FieldReader) -> float:
    """A price field: unset spellings are 0, as IB reports an absent limit or stop."""
    return msg.float()


def _unset_price(msg: FieldReader) -> float:
    """A field whose "unset" must stay distinguishable from 0 (trailing fields)."""
    raw = msg.str()
    try:
        value = float(raw) if raw not in ("", "Infinite", "Infinity") else UNSET
    except ValueError as exc:
        raise RequestError(f"field {msg.pos - 1} ({raw[:20]!r}) is not a number") from exc
    return UNSET if value >= UNSET else value


def read_place_order(msg: FieldReader, client_id: int, server_version: int) -> Placed:
    """Read a placeOrder (msg 3) at `server_version`; RequestError when fields are missing."""
    order_id = msg.request_id()
    contract = msg.contract()
    msg.skip(2)  # secIdType, secId
    action, quantity, order_type = msg.str().strip().upper(), msg.float(), msg.str().strip().upper()
    limit, aux = _price(msg), _price(msg)
    tif, oca_group, account = msg.str().strip().upper() or "DAY", msg.str(), msg.str().strip()
    msg.skip(2)  # openClose, origin
    order_ref, transmit, parent_id = msg.str(), msg.str(), msg.int()
    msg.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = msg.bool()
    msg.skip()  # hidden
    if contract.sec_type == "BAG":
        _skip_counted(msg, 8)  # combo legs
        _skip_counted(msg, 1)  # order combo leg prices
        _skip_counted(msg, 2)  # smart combo routing params
    msg.skip(3)  # sharesAllocation, discretionaryAmt, goodAfterTime
    good_till_date = msg.str().strip()
    fa_group, fa_method, fa_percentage = msg.str().strip(), msg.str().strip(), msg.str().strip()
    fa_profile = msg.str().strip() if server_version < 177 else ""
    msg.skip(4)  # modelCode, shortSaleSlot, designatedLocation, exemptCode
    oca_type = msg.int()
    # rule80A settlingFirm allOrNone minQty percentOffset eTradeOnly firmQuoteOnly nbboPriceCap
    # auctionStrategy startingPrice stockRefPrice delta stockRangeLower stockRangeUpper
    # overridePercentageConstraints volatility volatilityType
    msg.skip(17)
    if msg.str():  # deltaNeutralOrderType
        msg.skip(1 + 8)  # its aux price and the delta-neutral order's fields
    else:
        msg.skip()  # deltaNeutralAuxPrice
    msg.skip(2)  # continuousUpdate, referencePriceType
    trail_stop, trailing_percent = _unset_price(msg), _unset_price(msg)
    msg.skip(2)  # scaleInitLevelSize, scaleSubsLevelSize
    if 0 < _unset_price(msg) < UNSET:  # scalePriceIncrement
        msg.skip(7)
    msg.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if msg.str():  # hedgeType
        msg.skip()  # hedgeParam
    msg.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if msg.bool():  # deltaNeutralContract present
        msg.skip(3)
    algo, algo_params = _algo(msg)
    msg.skip()  # algoId
    what_if = msg.bool()
    msg.skip(4)  # orderMiscOptions, solicited, randomizeSize, randomizePrice
    if order_type in PEG_BENCH:
        msg.skip(5)
    conditions, ignore_rth, cancel_order = _conditions(msg)
    msg.skip(2)  # adjustedOrderType, triggerPrice
    lmt_price_offset = _unset_price(msg)
    # adjustedStopPrice adjustedStopLimitPrice adjustedTrailingAmount adjustableTrailingUnit
    # extOperator softDollarTier.name .val cashQty mifid2 x4 dontUseAutoPriceForHedge
    # isOmsContainer discretionaryUpToLimitPrice usePriceMgmtAlgo
    msg.skip(16)
    msg.skip(sum(server_version >= v for v in (158, 160, 162, 166, 169)))
    if server_version >= 170:
        _skip_peg_tail(msg, contract.exchange, order_type)
    order = Order(
        order_id=order_id, account=account, con_id=contract.con_id, action=action,
        quantity=quantity, order_type=order_type, limit_price=limit, aux_price=aux, tif=tif,
        client_id=client_id, order_ref=order_ref, status="PendingSubmit", fa_group=fa_group,
        fa_method=fa_method, fa_percentage=fa_percentage, outside_rth=outside_rth,
        oca_group=oca_group, oca_type=oca_type, parent_id=parent_id,
        transmit=transmit.strip() not in ("0", "false", "False"),  # unset means transmit
        good_till_date=good_till_date, trail_stop_price=trail_stop,
        trailing_percent=trailing_percent, lmt_price_offset=lmt_price_offset,
        algo_strategy=algo, algo_params=algo_params, conditions=conditions,
        conditions_ignore_rth=ignore_rth, conditions_cancel_order=cancel_order, what_if=what_if,
    )  # fmt: skip
    return Placed(contract, order, fa_profile)


def _skip_counted(msg: FieldReader, width: int) -> None:
    count = msg.int()
    if not 0 <= count <= 1_000:
        raise RequestError(f"a count of {count} is out of range")
    msg.skip(count * width)


def _algo(msg: FieldReader) -> tuple[str, tuple[tuple[str, str], ...]]:
    strategy = msg.str().strip()
    if not strategy:
        return "", ()
    count = msg.int()
    if not 0 <= count <= 1_000:
        raise RequestError(f"an algo param count of {count} is out of range")
    return strategy, tuple((msg.str().strip(), msg.str().strip()) for _ in range(count))


def _conditions(msg: FieldReader) -> tuple[tuple[tuple[str, ...], ...], bool, bool]:
    count = msg.int()
    if not 0 <= count <= 1_000:
        raise RequestError(f"a condition count of {count} is out of range")
    found = []
    for _ in range(count):
        kind = msg.int()
        if kind not in CONDITION_FIELDS:
            raise RequestError(f"order condition type {kind} is unknown")
        found.append((str(kind), *(msg.str() for _ in range(CONDITION_FIELDS[kind]))))
    if not count:
        return (), False, False
    return tuple(found), msg.bool(), msg.bool()


def _skip_peg_tail(msg: FieldReader, exchange: str, order_type: str) -> None:
    """The fields from server version 170 (ibapi MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS)."""
    if exchange == "IBKRATS":
        msg.skip()  # minTradeQty
    if order_type in ("PEG BEST", "PEGBEST"):
        msg.skip()  # minCompeteSize
        if msg.str() in ("Infinite", "Infinity", "inf"):  # competeAgainstBestOffset: up to mid
            msg.skip(2)
    elif order_type in ("PEG MID", "PEGMID"):
        msg.skip(2)  # midOffsetAtWhole, midOffsetAtHalf


# ----------------------------------------------------------------------------- handlers
@handles(3)
def place_order(session: ClientSession, msg: FieldReader) -> None:
    placed = read_place_order(msg, session.client_id or 0, session.server_version)
    session.gateway.engine.place(placed)


@handles(4)
def cancel_order(session: ClientSession, msg: FieldReader) -> None:
    msg.skip()  # version
    order_id = msg.request_id()
    session.gateway.engine.cancel(session.client_id or 0, order_id)


@handles(58)
def global_cancel(session: ClientSession, msg: FieldReader) -> None:
    session.gateway.engine.cancel_all()


# ----------------------------------------------------------------------------- IB's texts
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


# ----------------------------------------------------------------------------- whatIf
def what_if(
    order: Order, inst: Instrument, quote: Quote, before: dict[str, float], config: GatewayConfig
) -> tuple[float, ...]:
    """A whatIf answer's numbers (trades.PREVIEW_FIELDS): the accounts' initial and maintenance
    margin and equity with loan before, the change the order brings (its value at the limit, or
    at the side it would take, times the instrument's margin rates; equity less the
    commission) and after, then the commission (as its minimum and maximum too)."""
    price = order.limit_price or (quote.ask if order.action == "BUY" else quote.bid)
    notional = order.quantity * price * multiplier(inst)
    side = 1 if order.action == "BUY" else -1
    rates = valuation.MARGIN_RATES.get((inst.sec_type, side), (config.what_if_margin,) * 2)
    commission = config.commissions.charge(inst.sec_type, order.quantity, price, multiplier(inst))
    now = [before[k] for k in ("InitMarginReq", "MaintMarginReq", "EquityWithLoanValue")]
    change = [notional * rates[0], notional * rates[1], -commission]
    after = [b + c for b, c in zip(now, change, strict=True)]
    return tuple(round(x, 2) for x in (*now, *change, *after, commission, commission, commission))


# ----------------------------------------------------------------------------- news
class News:
    """What the engine tells the placing client, through its current session's `notify` (held
    while IB's link is down); nothing when that client is not connected."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def tell(self, client_id: int, fields: Callable[[ClientSession], list[object]]) -> None:
        session = self.gateway.clients.get(client_id)
        if session is not None:
            session.notify(*fields(session))

    def order(self, order: Order, inst: Instrument | None) -> None:
        """openOrder + orderStatus: the order as it is now."""
        self.tell(
            order.client_id, lambda s: trades.open_order_fields(order, inst, s.server_version)
        )
        self.status(order)

    def status(self, order: Order) -> None:
        self.tell(order.client_id, lambda s: trades.order_status_fields(order))

    def preview(self, order: Order, inst: Instrument) -> None:
        """A whatIf answer: openOrder alone."""
        self.tell(
            order.client_id, lambda s: trades.open_order_fields(order, inst, s.server_version)
        )

    def error(self, client_id: int, order_id: int, reject: Reject) -> None:
        self.tell(client_id, lambda s: [4, 2, order_id, reject.code, reject.text, ""])

    def execution(self, ex: Execution, inst: Instrument, cumulative: tuple[float, float]) -> None:
        """execDetails with reqId -1 (a live fill), cumQty and avgPrice in its account."""
        self.tell(
            ex.client_id,
            lambda s: trades.exec_details_fields(-1, ex, inst, cumulative, s.server_version),
        )

    def commission(self, ex: Execution) -> None:
        self.tell(ex.client_id, lambda s: trades.commission_fields(ex))
