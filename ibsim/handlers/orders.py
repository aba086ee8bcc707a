"""Order requests on the wire: placeOrder (3), cancelOrder (4) and reqGlobalCancel (58), read
field by field and handed to the gateway's order engine (ibsim.orders.engine), which owns every
order state; `ClientNews` sends the engine's news (openOrder, orderStatus, execDetails,
commissionReport, errors) to the client that placed the order.

placeOrder at server versions 157-178 (as the clients encode it), the same for ib_async 2.1
(`client.py placeOrder`) and the official ibapi (`client.py placeOrder`): every field is read,
including the count-dependent parts (combo legs, delta-neutral, scale, hedge, algo params, PEG
BENCH, conditions, the PEG BEST / PEG MID / IBKRATS tail), so the fields after them stay aligned.
Each client spells "unset" its own way (`""`, `2147483647`, `1.7976931348623157e+308`, ...);
`FieldReader` reads them all as 0 / false.

cancelOrder: `4 | 1 | orderId | manualCancelOrderTime` (the last from 169); reqGlobalCancel:
`58 | 1`. reqIds (8) is answered in `ibsim.handlers.account`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ibsim.accounts.book import UNSET, Execution, Order
from ibsim.handlers import portfolio, trades
from ibsim.handlers.client import Client
from ibsim.handlers.fields import FieldReader, RequestError
from ibsim.market.instruments import Instrument
from ibsim.orders.engine import Placed
from ibsim.orders.matching import Reject

# The fields after its type that each order condition has (ib_async order.py, ibapi
# order_condition.py): price, time, margin, execution, volume, percent change.
CONDITION_FIELDS = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}
PEG_BENCH = ("PEG BENCH", "PEGBENCH")


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
    # extOperator softDollarTier.name .val
    msg.skip(7)
    cash_qty = _unset_price(msg)
    # mifid2 x4 dontUseAutoPriceForHedge isOmsContainer discretionaryUpToLimitPrice
    # usePriceMgmtAlgo
    msg.skip(8)
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
        cash_qty=cash_qty,
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
def place_order(client: Client, msg: FieldReader) -> None:
    placed = read_place_order(msg, client.client_id or 0, client.server_version)
    client.state.engine.place(placed)


def cancel_order(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    order_id = msg.request_id()
    client.state.engine.cancel(client.client_id or 0, order_id)


def global_cancel(client: Client, msg: FieldReader) -> None:
    client.state.engine.cancel_all()


# ----------------------------------------------------------------------------- news
class ClientNews:
    """The engine's news (ibsim.orders.news.OrderNews) for the placing client, through its
    connection's `notify` (held while IB's link is down); nothing when it is not connected."""

    def __init__(self, clients: Mapping[int, Client]) -> None:
        self.clients = clients  # the login's connected clients by clientId

    def tell(self, client_id: int, fields: Callable[[Client], list[object]]) -> None:
        client = self.clients.get(client_id)
        if client is not None:
            client.notify(*fields(client))

    def order(self, order: Order, inst: Instrument | None) -> None:
        """openOrder + orderStatus: the order as it is now."""
        self.tell(
            order.client_id, lambda c: trades.open_order_fields(order, inst, c.server_version)
        )
        self.status(order)

    def status(self, order: Order) -> None:
        self.tell(order.client_id, lambda c: trades.order_status_fields(order))

    def preview(self, order: Order, inst: Instrument) -> None:
        """A whatIf answer: openOrder alone."""
        self.tell(
            order.client_id, lambda c: trades.open_order_fields(order, inst, c.server_version)
        )

    def error(self, client_id: int, order_id: int, reject: Reject) -> None:
        self.tell(client_id, lambda c: [4, 2, order_id, reject.code, reject.text, ""])

    def execution(self, ex: Execution, inst: Instrument, cumulative: tuple[float, float]) -> None:
        """execDetails with reqId -1 (a live fill), cumQty and avgPrice in its account."""
        self.tell(
            ex.client_id,
            lambda c: trades.exec_details_fields(-1, ex, inst, cumulative, c.server_version),
        )
        for client in list(self.clients.values()):  # every subscriber, as IB does
            portfolio.filled(client, ex.account, ex.con_id)

    def commission(self, ex: Execution) -> None:
        self.tell(ex.client_id, lambda c: trades.commission_fields(ex))
