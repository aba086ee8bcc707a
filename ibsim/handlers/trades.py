"""Orders and fills: open and completed orders, executions and their commission reports.

Everything is read from the gateway's Book (ibsim.accounts.book). Layouts are those of server
versions 157-178, checked against the decoders of ib_async 2.1.0 (`ib_async/decoder.py`) and
the official ibapi 10.51 (`ibapi/decoder.py`, `ibapi/orderdecoder.py`).

- reqExecutions (7): execDetails (11) for each of today's fills the filter matches, then
  execDetailsEnd (55). Each fill's commissionReport (59) follows at once, or `commission_delay`
  seconds later (after the END: a client that stops listening there misses it), or, when the
  delay is -n, only after n reqExecutions answers have gone without it. A corrected fill and
  its correction (same execId up to the last dot, `.01` -> `.02`) are both reported, as IB
  does.
- reqOpenOrders (5) / reqAllOpenOrders (16): openOrder (5) + orderStatus (3) per open order, then
  openOrderEnd (53). reqOpenOrders sees the orders of the asking clientId only (client 0 also
  gets the TWS orders, which the book writes as client 0); reqAllOpenOrders sees every order.
- reqCompletedOrders (99): completedOrder (101) per order completed today, then
  completedOrdersEnd (102).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from ibsim.accounts.book import SIDES, UNSET, Execution, Order
from ibsim.clock import TWS_ZONE
from ibsim.handlers.client import Client
from ibsim.handlers.fields import UNSET_DOUBLE, UNSET_INT, FieldReader
from ibsim.market import errors, rules
from ibsim.market.errors import IBError
from ibsim.market.instruments import Instrument

TWS_ZONE_NAME = "US/Eastern"  # how IB spells it in execDetails times
UNSET_LONG = "9223372036854775807"
U_D, U_I = UNSET_DOUBLE, UNSET_INT
OPEN, DONE = "open", "done"  # openOrder (5), completedOrder (101)
_COMPLETED_STATUS = {"Filled": "Filled", "Cancelled": "Cancelled by Trader"}


# ----------------------------------------------------------------------------- value spelling
def _num(value: float) -> str:
    """A double as IB spells it: Double.MAX (`1.7976931348623157E308`) for "no value"."""
    return U_D if value >= UNSET else repr(float(value))


def _qty(value: float) -> str:
    """A size (a Decimal in ibapi): `100`, `0.5`, never `100.0` in an int-looking field."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _contract(inst: Instrument | None, con_id: int, exchange: str = "") -> list[object]:
    """The 11-field contract block of openOrder, completedOrder and execDetails: conId symbol
    secType lastTradeDate strike right multiplier exchange currency localSymbol tradingClass."""
    if inst is None:  # a conId the catalog does not know: report what the book has
        return [con_id, "", "", "", "0", "", "", exchange, "", "", ""]
    return [
        inst.con_id, inst.symbol, inst.sec_type, inst.last_trade_date,
        f"{inst.strike:g}" if inst.strike else "0", inst.right, inst.multiplier,
        exchange or inst.exchange, inst.currency, inst.local_symbol, inst.trading_class,
    ]  # fmt: skip


# ----------------------------------------------------------------------------- order fields
class Row(NamedTuple):
    """One order field after the contract block. `value` is a constant or a function of the
    Order; `only` names the one message that carries it ("" = both); the field is on the wire
    for server versions since <= sv < before."""

    name: str
    value: object
    only: str = ""
    since: int = 0
    before: int = 1_000


def _attr(name: str, spell: Callable[[object], object] = str) -> Callable[[Order], object]:
    return lambda order: spell(getattr(order, name))


# whatIf answers (Order.preview, in this order); a real order sends IB's "no value" in each
PREVIEW_FIELDS = (
    "initMarginBefore", "maintMarginBefore", "equityWithLoanBefore", "initMarginChange",
    "maintMarginChange", "equityWithLoanChange", "initMarginAfter", "maintMarginAfter",
    "equityWithLoanAfter", "commission", "minCommission", "maxCommission",
)  # fmt: skip


def _preview(index: int) -> Callable[[Order], object]:
    return lambda order: _num(order.preview[index]) if order.preview else U_D


def _algo(order: Order) -> tuple[object, ...]:
    """algoStrategy, and when it is set the count of its params and each tag and value."""
    if not order.algo_strategy:
        return ("",)
    params = [x for pair in order.algo_params for x in pair]
    return (order.algo_strategy, len(order.algo_params), *params)


def _conditions(order: Order) -> tuple[object, ...]:
    """The count of conditions; when there are any, each one's fields as placed (type first),
    then conditionsIgnoreRth and conditionsCancelOrder."""
    if not order.conditions:
        return (0,)
    fields = [x for condition in order.conditions for x in condition]
    flags = (int(order.conditions_ignore_rth), int(order.conditions_cancel_order))
    return (len(order.conditions), *fields, *flags)


# openOrder (5) and completedOrder (101) share one field list: the rows marked OPEN are read by
# openOrder only, those marked DONE by completedOrder only. Decoder lines (sv 178; no combo legs,
# delta-neutral, scale, hedge or PEG BENCH parts, so those counts are 0; algo params and
# conditions are sent as placed):
#   openOrder:      ib_async decoder.py L882-1147; ibapi decoder.py processOpenOrder L309-409
#   completedOrder: ib_async decoder.py L1149-1359; ibapi decoder.py processCompletedOrderMsg
#                   L2143-2221; both drive ibapi/orderdecoder.py (decodeXxx, L69-553)
# Unset doubles are IB's Double.MAX, unset ints Integer.MAX, as a real TWS sends them.
ORDER_FIELDS: tuple[Row, ...] = (
    Row("action", _attr("action")),
    Row("totalQuantity", _attr("quantity", _qty)),
    Row("orderType", _attr("order_type")),
    Row("lmtPrice", _attr("limit_price", _num)),
    Row("auxPrice", _attr("aux_price", _num)),
    Row("tif", _attr("tif")),
    Row("ocaGroup", _attr("oca_group")),
    Row("account", _attr("account")),
    Row("openClose", ""),
    Row("origin", 0),  # 0 customer
    Row("orderRef", _attr("order_ref")),
    Row("clientId", _attr("client_id"), OPEN),
    Row("permId", _attr("perm_id")),
    Row("outsideRth", _attr("outside_rth", int)),
    Row("hidden", 0),
    Row("discretionaryAmt", 0),
    Row("goodAfterTime", ""),
    Row("sharesAllocation", "", OPEN),  # deprecated, skipped by both clients
    Row("faGroup", _attr("fa_group")),
    Row("faMethod", _attr("fa_method")),
    Row("faPercentage", _attr("fa_percentage")),
    Row("faProfile", "", before=177),  # desupported at 177 (MIN_SERVER_VER_FA_PROFILE_DESUPPORT)
    Row("modelCode", ""),
    Row("goodTillDate", _attr("good_till_date")),
    Row("rule80A", ""),
    Row("percentOffset", U_D),
    Row("settlingFirm", ""),
    Row("shortSaleSlot", 0),
    Row("designatedLocation", ""),
    Row("exemptCode", -1),
    Row("auctionStrategy", 0, OPEN),
    Row("startingPrice", U_D),
    Row("stockRefPrice", U_D),
    Row("delta", U_D),
    Row("stockRangeLower", U_D),
    Row("stockRangeUpper", U_D),
    Row("displaySize", U_I),
    Row("blockOrder", 0, OPEN),
    Row("sweepToFill", 0),
    Row("allOrNone", 0),
    Row("minQty", U_I),
    Row("ocaType", _attr("oca_type")),
    Row("eTradeOnly", 0, OPEN),
    Row("firmQuoteOnly", 0, OPEN),
    Row("nbboPriceCap", U_D, OPEN),
    Row("parentId", _attr("parent_id"), OPEN),
    Row("triggerMethod", 0),
    Row("volatility", U_D),
    Row("volatilityType", 0),
    Row("deltaNeutralOrderType", ""),  # non-empty would add 8 (open) / 4 (completed) fields
    Row("deltaNeutralAuxPrice", U_D),
    Row("continuousUpdate", 0),
    Row("referencePriceType", 0),
    Row("trailStopPrice", _attr("trail_stop_price", _num)),
    Row("trailingPercent", _attr("trailing_percent", _num)),
    Row("basisPoints", U_D, OPEN),
    Row("basisPointsType", U_I, OPEN),
    Row("comboLegsDescrip", ""),
    Row("comboLegCount", 0),
    Row("orderComboLegCount", 0),
    Row("smartComboRoutingParamCount", 0),
    Row("scaleInitLevelSize", U_I),
    Row("scaleSubsLevelSize", U_I),
    Row("scalePriceIncrement", U_D),  # a value in (0, MAX) would add 7 scale fields
    Row("hedgeType", ""),  # non-empty would add hedgeParam
    Row("optOutSmartRouting", 0, OPEN),
    Row("clearingAccount", ""),
    Row("clearingIntent", "IB"),
    Row("notHeld", 0),
    Row("deltaNeutralContractPresent", 0),
    Row("algoStrategy", _algo),  # with its params when set
    Row("solicited", 0),
    Row("whatIf", _attr("what_if", int), OPEN),
    Row("status", _attr("status")),
    *(Row(name, _preview(i), OPEN) for i, name in enumerate(PREVIEW_FIELDS)),
    Row("commissionCurrency", lambda order: "USD" if order.preview else "", OPEN),
    Row("warningText", "", OPEN),
    Row("randomizeSize", 0),
    Row("randomizePrice", 0),
    Row("conditions", _conditions),  # PEG BENCH fields would come first
    Row("adjustedOrderType", "None", OPEN),
    Row("triggerPrice", U_D, OPEN),
    # again: the adjusted order's (decodeStopPriceAndLmtPriceOffset)
    Row("trailStopPrice", _attr("trail_stop_price", _num)),
    Row("lmtPriceOffset", _attr("lmt_price_offset", _num)),
    Row("adjustedStopPrice", U_D, OPEN),
    Row("adjustedStopLimitPrice", U_D, OPEN),
    Row("adjustedTrailingAmount", U_D, OPEN),
    Row("adjustableTrailingUnit", 0, OPEN),
    Row("softDollarTier.name", "", OPEN),
    Row("softDollarTier.value", "", OPEN),
    Row("softDollarTier.displayName", "", OPEN),
    Row("cashQty", _attr("cash_qty", _num)),
    Row("dontUseAutoPriceForHedge", 0),
    Row("isOmsContainer", 0),
    Row("discretionaryUpToLimitPrice", 0, OPEN),
    Row("usePriceMgmtAlgo", 0, OPEN),
    Row("duration", U_I, OPEN, since=158),  # ibapi MIN_SERVER_VER_DURATION (ib_async: 159)
    Row("postToAts", U_I, OPEN, since=160),
    Row("autoCancelParent", 0, OPEN, since=162),
    Row("autoCancelDate", "", DONE),
    Row("filledQuantity", _attr("filled", _qty), DONE),
    Row("refFuturesConId", 0, DONE),
    Row("autoCancelParent", 0, DONE),
    Row("shareholder", "", DONE),
    Row("imbalanceOnly", 0, DONE),
    Row("routeMarketableToBbo", 0, DONE),
    Row("parentPermId", lambda order: order.parent_perm_id or UNSET_LONG, DONE),
    Row("completedTime", _attr("completed_time"), DONE),
    Row("completedStatus", lambda order: _COMPLETED_STATUS.get(order.status, order.status), DONE),
    Row("minTradeQty", U_I, since=170),  # MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS
    Row("minCompeteSize", U_I, since=170),
    Row("competeAgainstBestOffset", U_D, since=170),
    Row("midOffsetAtWhole", U_D, since=170),
    Row("midOffsetAtHalf", U_D, since=170),
)


def order_fields(order: Order, message: str, server_version: int) -> list[object]:
    """The order part of openOrder (`OPEN`) or completedOrder (`DONE`), in wire order. A row
    whose value is a tuple (the algo params, the conditions) spreads over that many fields."""
    out: list[object] = []
    for row in ORDER_FIELDS:
        if row.only in ("", message) and row.since <= server_version < row.before:
            value = row.value(order) if callable(row.value) else row.value
            out.extend(value if isinstance(value, tuple) else (value,))
    return out


def open_order_fields(order: Order, inst: Instrument | None, server_version: int) -> list[object]:
    """openOrder (5): no version (sv >= 145); 127 fields for a plain order at 178."""
    return [
        5, order.order_id, *_contract(inst, order.con_id),
        *order_fields(order, OPEN, server_version),
    ]  # fmt: skip


def completed_order_fields(
    order: Order, inst: Instrument | None, server_version: int
) -> list[object]:
    """completedOrder (101): no orderId, no clientId; 96 fields for a plain order at 178."""
    return [101, *_contract(inst, order.con_id), *order_fields(order, DONE, server_version)]


def order_status_fields(order: Order) -> list[object]:
    """orderStatus (3), no version (sv >= 131): orderId status filled remaining avgFillPrice
    permId parentId lastFillPrice clientId whyHeld mktCapPrice. ib_async decoder.py L49-53,
    ibapi decoder.py processOrderStatusMsg L255-287."""
    last = order.last_fill_price or (order.avg_fill_price if order.filled else 0.0)
    return [
        3, order.order_id, order.status, _qty(order.filled), _qty(order.remaining),
        repr(float(order.avg_fill_price)), order.perm_id, order.parent_id, repr(float(last)),
        order.client_id, order.why_held, "0.0",
    ]  # fmt: skip


# ----------------------------------------------------------------------------- executions
def exec_details_fields(
    req_id: int, ex: Execution, inst: Instrument | None, cum: tuple[float, float], sv: int
) -> list[object]:
    """execDetails (11), no version (sv >= 136): 32 fields at 178 (pendingPriceRevision from
    178). ib_async decoder.py execDetails L426-475; ibapi decoder.py processExecutionDataMsg
    L812-883. The contract's exchange is the execution's, as IB reports it."""
    cum_qty, avg_price = cum
    stamp = f"{ex.time.astimezone(TWS_ZONE):%Y%m%d %H:%M:%S} {TWS_ZONE_NAME}"
    fields: list[object] = [
        11, req_id, ex.order_id, *_contract(inst, ex.con_id, ex.exchange),
        ex.exec_id, stamp, ex.account, ex.exchange, ex.side, _qty(ex.shares), repr(float(ex.price)),
        ex.perm_id, ex.client_id, 0, _qty(cum_qty), repr(avg_price), ex.order_ref,
        "", "", "", 2,  # evRule, evMultiplier, modelCode, lastLiquidity (2: removed)
    ]  # fmt: skip
    if sv >= 178:
        fields.append(0)  # pendingPriceRevision
    return fields


def commission_fields(ex: Execution) -> list[object]:
    """commissionReport (59), version 1: 8 fields exactly (ib_async tuple-unpacks it,
    decoder.py L573-594; ibapi processCommissionAndFeesReportMsg L1178-1189). IB sends an
    empty yieldRedemptionDate and Double.MAX for the P&L and yield it has no value for."""
    return [
        59, 1, ex.exec_id, _num(ex.commission), ex.commission_currency, _num(ex.realized_pnl),
        U_D, "",
    ]  # fmt: skip


class ExecFilter(NamedTuple):
    """ExecutionFilter: 0 and "" match everything."""

    client_id: int = 0
    accounts: tuple[str, ...] | None = None  # None: every account
    since: datetime | None = None
    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    side: str = ""

    def matches(self, ex: Execution, inst: Instrument | None) -> bool:
        return (
            (not self.client_id or ex.client_id == self.client_id)
            and (self.accounts is None or ex.account in self.accounts)
            and (self.since is None or ex.time >= self.since)
            and (not self.symbol or (inst is not None and inst.symbol == self.symbol))
            and (not self.sec_type or (inst is not None and inst.sec_type == self.sec_type))
            and (not self.exchange or ex.exchange == self.exchange)
            and (not self.side or ex.side == self.side)
        )


def _todays(executions: Iterable[Execution], now: datetime) -> list[Execution]:
    """What IB Gateway reports: the fills since midnight in its zone, up to now, in time order
    (a correction after the fill it corrects: `.02` sorts after `.01`)."""
    today = now.astimezone(TWS_ZONE).date()
    found = [e for e in executions if e.time.astimezone(TWS_ZONE).date() == today]
    return sorted((e for e in found if e.time <= now), key=lambda e: (e.time, e.exec_id))


def _cumulative(executions: list[Execution]) -> dict[str, tuple[float, float]]:
    """cumQty and avgPrice of each fill: over the fills of its order in its account so far,
    leaving out fills a correction replaced."""
    out: dict[str, tuple[float, float]] = {}
    totals: dict[tuple[int, int, str], tuple[float, float]] = {}
    replaced = {e.exec_id for e in executions if e.corrected_by}
    for ex in executions:
        key = (ex.perm_id, ex.order_id, ex.account)
        shares, value = totals.get(key, (0.0, 0.0))
        shares, value = shares + ex.shares, value + ex.shares * ex.price
        out[ex.exec_id] = (shares, round(value / shares, 10) if shares else 0.0)
        if ex.exec_id not in replaced:
            totals[key] = (shares, value)
    return out


def _read_filter(client: Client, msg: FieldReader, req_id: int) -> ExecFilter:
    client_id, account, when = msg.int(), msg.str().strip(), msg.str().strip()
    symbol, sec_type, exchange = (msg.str().strip().upper() for _ in range(3))
    side = msg.str().strip().upper()
    try:
        end = rules.parse_end(when)
    except IBError:
        raise errors.invalid_request(
            f"Invalid execution filter time {when!r}: use yyyymmdd-hh:mm:ss (UTC) or "
            "yyyymmdd hh:mm:ss with a time zone"
        ) from None
    if end.implied_zone:
        client.send_error(req_id, errors.IMPLIED_TIME_ZONE)
    return ExecFilter(
        client_id=client_id,
        accounts=client.state.book.account_ids(account) if account else None,
        since=end.when,
        symbol=symbol,
        sec_type=sec_type,
        exchange=exchange,
        side=SIDES.get(side, side),
    )


def executions(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    req_id = msg.request_id()
    try:
        wanted = _read_filter(client, msg, req_id)
    except IBError as exc:  # 321 is a warning to ib_async: end the request so it returns
        client.send_error(req_id, exc)
        client.send(55, 1, req_id)
        return
    state = client.state
    catalog = state.catalog
    todays = _todays(state.book.executions, client.now())
    cumulative = _cumulative(todays)
    withheld = state.withheld_commissions
    late: list[Execution] = []
    for ex in todays:
        inst = catalog.by_con_id(ex.con_id)
        if not wanted.matches(ex, inst):
            continue
        client.send(
            *exec_details_fields(req_id, ex, inst, cumulative[ex.exec_id], client.server_version)
        )
        held = withheld.get(ex.exec_id, 0)
        if ex.commission_delay == 0 or (ex.commission_delay < 0 and held >= -ex.commission_delay):
            client.send(*commission_fields(ex))
        elif ex.commission_delay > 0:
            late.append(ex)
        else:
            withheld[ex.exec_id] = held + 1
    client.send(55, 1, req_id)
    for ex in late:
        client.spawn(_send_later(client, ex.commission_delay, commission_fields(ex)))


async def _send_later(client: Client, delay: float, fields: list[object]) -> None:
    await asyncio.sleep(delay)
    client.send(*fields)


# ----------------------------------------------------------------------------- orders
def open_orders(client: Client, msg: FieldReader) -> None:
    every_client = msg.msg_id == 16
    for order in client.state.book.open_orders:
        if every_client or order.client_id == client.client_id:
            inst = client.state.catalog.by_con_id(order.con_id)
            client.send(*open_order_fields(order, inst, client.server_version))
            client.send(*order_status_fields(order))
    client.send(53, 1)


def completed_orders(client: Client, msg: FieldReader) -> None:
    api_only = msg.bool()
    now = client.now()
    for order in client.state.book.completed_orders:
        if (api_only and order.order_id <= 0) or not _completed_today(order, now):
            continue
        inst = client.state.catalog.by_con_id(order.con_id)
        client.send(*completed_order_fields(order, inst, client.server_version))
    client.send(102)


def _completed_today(order: Order, now: datetime) -> bool:
    """IB reports the orders completed today; a completion time it cannot read counts as today."""
    day, _, rest = order.completed_time.partition(" ")
    clock, _, zone = rest.partition(" ")
    try:
        local = datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S")
        when = local.replace(tzinfo=ZoneInfo(zone) if zone else TWS_ZONE)
    except (ValueError, KeyError, OSError):
        return True
    return when.astimezone(TWS_ZONE).date() == now.astimezone(TWS_ZONE).date() and when <= now
