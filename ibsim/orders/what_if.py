"""whatIf: the margin, equity and commission figures an order would bring to its accounts,
which the engine answers a whatIf placeOrder with instead of placing it."""

from __future__ import annotations

from ibsim.accounts import valuation
from ibsim.accounts.book import Order
from ibsim.config import GatewayConfig
from ibsim.market.instruments import Instrument
from ibsim.market.quotes import Quote


def what_if(
    order: Order, inst: Instrument, quote: Quote, before: dict[str, float], config: GatewayConfig
) -> tuple[float, ...]:
    """A whatIf answer's numbers, in the order openOrder sends them (PREVIEW_FIELDS of
    ibsim.handlers.trades): the accounts' initial and maintenance margin and equity with loan
    before, the change the order brings (its value at the limit, or at the side it would take,
    times the instrument's margin rates; equity less the commission) and after, then the
    commission (as its minimum and maximum too)."""
    price = order.limit_price or (quote.ask if order.action == "BUY" else quote.bid)
    mult = inst.value_multiplier
    notional = order.quantity * price * mult
    side = 1 if order.action == "BUY" else -1
    rates = valuation.MARGIN_RATES.get((inst.sec_type, side), (config.what_if_margin,) * 2)
    commission = config.commissions.charge(inst.sec_type, order.quantity, price, mult)
    now = [before[k] for k in ("InitMarginReq", "MaintMarginReq", "EquityWithLoanValue")]
    change = [notional * rates[0], notional * rates[1], -commission]
    after = [b + c for b, c in zip(now, change, strict=True)]
    return tuple(round(x, 2) for x in (*now, *change, *after, commission, commission, commission))
