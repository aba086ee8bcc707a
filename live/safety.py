"""Pre-trade safety: which intents may reach the gateway at all.

Owns: `OrderLimits` (size, notional and price-band caps), `TradingMode` (paper by default; live
trading is an explicit opt-in from the environment, per account) and `check`, which raises
`OrderRefused` with one sentence naming the cause and the fix. Every order and every change to
one passes `check` before it is sent: the order manager journals a refused intent as `refused`
and a refused modification as `failed`; neither reaches the gateway. Pure: no IB, no storage.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ibkr.exceptions import IBWError
from live.intents import NEEDS_AUX, TRAILING, OrderIntent

PAPER_PREFIXES = ("D",)  # IB paper accounts: DU123456 (individual), DF1234567 (FA master)
_MASTER = re.compile(r"^D?F\d")  # an FA master (F1234567, paper DF1234567) holds no positions


class OrderRefused(IBWError):
    """An intent broke a safety rule; it was journaled as refused and never sent."""

    default_cause = "the order was refused by the safety checks"
    default_fix = "correct the order and submit it under a new key"


@dataclass(frozen=True)
class OrderLimits:
    """Caps on one order: shares/contracts, quantity x price x multiplier in its currency, and
    how far its limit price may trade through the reference price (0.5: a BUY up to 1.5 times
    it, a SELL down to half of it), which catches a slipped digit before the order trades at it."""

    max_quantity: float = 10_000
    max_notional: float = 1_000_000
    max_price_deviation: float = 0.5

    def __post_init__(self) -> None:
        if not (self.max_quantity > 0 and self.max_notional > 0 and self.max_price_deviation > 0):
            raise OrderRefused(
                "the order limits must be positive numbers",
                "set IBW_MAX_QUANTITY, IBW_MAX_NOTIONAL and IBW_MAX_PRICE_DEVIATION above zero",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrderLimits:
        """IBW_MAX_QUANTITY, IBW_MAX_NOTIONAL and IBW_MAX_PRICE_DEVIATION, each defaulting to
        the class default."""
        env = os.environ if environ is None else environ
        values = {}
        for name, variable in (
            ("max_quantity", "IBW_MAX_QUANTITY"),
            ("max_notional", "IBW_MAX_NOTIONAL"),
            ("max_price_deviation", "IBW_MAX_PRICE_DEVIATION"),
        ):
            text = (env.get(variable) or "").strip()
            if text:
                try:
                    values[name] = float(text)
                except ValueError:
                    raise OrderRefused(
                        f"{variable} is {text!r}, not a number", f"set {variable} to a number"
                    ) from None
        return cls(**values)


def is_paper_account(account: str) -> bool:
    """IB's paper account ids start with "D"; anything else is treated as live money."""
    return account.strip().upper().startswith(PAPER_PREFIXES)


@dataclass(frozen=True)
class TradingMode:
    """`paper` (default) or `live`, plus the accounts explicitly allowed to trade live."""

    mode: str = "paper"
    live_accounts: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.mode not in ("paper", "live"):
            raise OrderRefused(
                f"IBW_TRADING_MODE is {self.mode!r}",
                "set IBW_TRADING_MODE to paper (the default) or live",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TradingMode:
        """Read IBW_TRADING_MODE and IBW_LIVE_ACCOUNTS (a comma list)."""
        env = os.environ if environ is None else environ
        mode = (env.get("IBW_TRADING_MODE") or "paper").strip().lower()
        accounts = (env.get("IBW_LIVE_ACCOUNTS") or "").split(",")
        return cls(mode, frozenset(a.strip() for a in accounts if a.strip()))

    def allows_live(self, account: str) -> bool:
        return self.mode == "live" and account in self.live_accounts


def is_fa_master(account: str) -> bool:
    """An FA master's code (F1234567, paper DF1234567): it holds no positions of its own."""
    return bool(_MASTER.match(account))


def traded_accounts(intent: OrderIntent, managed: Iterable[str]) -> list[str]:
    """The accounts an order trades: its own, or for an FA allocation every sub-account."""
    if not intent.allocation:
        return [intent.account]
    return sorted(a for a in managed if a and not is_fa_master(a))


def limit_is_a_price(intent: OrderIntent) -> bool:
    """A trailing order's limit is an offset from its stop, not a price to compare or value."""
    return intent.limit_price is not None and intent.order_type not in TRAILING


def quote_price(bid: float | None, ask: float | None, last: float | None) -> float | None:
    """The reference price of a quote: the last trade, else the midpoint (None if neither is a
    positive number; IB sends NaN or -1 for a side it has no price for)."""
    if last is not None and last > 0:
        return float(last)
    if bid is not None and ask is not None and bid > 0 and ask > 0:
        return (bid + ask) / 2
    return None


def order_price(intent: OrderIntent, reference_price: float | None) -> float | None:
    """The price the notional cap is measured at: the limit, else a stop or trigger price, else
    the reference (a trailing amount or a relative offset is a distance, not a price)."""
    limit = intent.limit_price if limit_is_a_price(intent) else None
    aux = intent.aux_price if intent.order_type in NEEDS_AUX else None
    for price in (limit, aux, reference_price):
        if price is not None and math.isfinite(price) and price > 0:
            return float(price)
    return None


def check(
    intent: OrderIntent,
    managed_accounts: Iterable[str],
    reference_price: float | None,
    limits: OrderLimits,
    mode: TradingMode,
    multiplier: float = 1.0,
) -> None:
    """Raise `OrderRefused` unless the intent (a new order or an order as modified) may be sent
    to the gateway; the mode is the service's current one, whatever it was when first sent."""
    subject = f"order {intent.key}"
    managed = sorted(a for a in managed_accounts if a)
    if intent.account and intent.account not in managed:
        raise OrderRefused(
            f"account {intent.account} is not managed by this login "
            f"(it manages {', '.join(managed) or 'no account'})",
            "use one of the managed accounts",
            subject=subject,
        )
    for account in traded_accounts(intent, managed):
        if not is_paper_account(account) and not mode.allows_live(account):
            raise OrderRefused(
                f"account {account} is a live account and live trading is not enabled for it",
                f"set IBW_TRADING_MODE=live and add {account} to IBW_LIVE_ACCOUNTS to trade it",
                subject=subject,
            )
    if not intent.quantity <= limits.max_quantity:  # NaN fails too
        raise OrderRefused(
            f"quantity {intent.quantity:g} exceeds the limit of {limits.max_quantity:g}",
            "split the order or raise max_quantity",
            subject=subject,
        )
    for name, value in (("limit", intent.limit_price), ("aux", intent.aux_price)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise OrderRefused(
                f"its {name} price {value:g} is not a positive number",
                f"give a positive {name} price",
                subject=subject,
            )
    _check_price_band(intent, reference_price, limits.max_price_deviation, subject)
    price = order_price(intent, reference_price)
    if price is None and not intent.by_cash:
        raise OrderRefused(
            f"no price is known for conId {intent.con_id} to check the notional limit",
            "give a limit price or subscribe to the contract's market data",
            subject=subject,
        )
    notional = (
        intent.cash_quantity if intent.by_cash else intent.quantity * price * (multiplier or 1.0)
    )
    if not notional <= limits.max_notional:
        raise OrderRefused(
            f"notional {notional:,.2f} exceeds the limit of {limits.max_notional:,.2f}",
            "reduce the quantity or raise max_notional",
            subject=subject,
        )


def _check_price_band(
    intent: OrderIntent, reference_price: float | None, band: float, subject: str
) -> None:
    """A limit that would trade through the market by more than the band is a typing slip.

    Only the side that costs money counts: a BUY far above the reference or a SELL far below it
    fills at once at a bad price, while a bid far below (a resting "stink bid") only waits.
    """
    known = reference_price is not None and math.isfinite(reference_price) and reference_price > 0
    if not (known and limit_is_a_price(intent)):
        return  # nothing to compare: the notional cap still applies
    deviation = intent.limit_price / reference_price - 1
    if intent.action == "SELL":
        deviation = -deviation
    if deviation > band:
        side = "above" if intent.action == "BUY" else "below"
        raise OrderRefused(
            f"{intent.action} limit price {intent.limit_price:g} is {deviation:.0%} {side} the "
            f"reference price {reference_price:g}, beyond the band of {band:.0%}",
            "check the price or raise max_price_deviation",
            subject=subject,
        )
