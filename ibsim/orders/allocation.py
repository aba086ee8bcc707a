"""Financial Advisor allocation, pure: how an order placed on an FA group or profile divides over
the sub-accounts (IB's Financial Advisor allocation methods).

An order's quantity is divided once, when it is placed, into a target per account: by the group's
method (or the order's faMethod), or by the profile's allocations. Every fill is then divided over
what each account still has to get, so the accounts reach their targets exactly, whatever the
partial fills. Divisions use the largest-remainder rule in whole units (whole shares for an order
in whole shares, else ten-thousandths), so the parts always add up to the whole. NetLiq and
AvailableEquity read the accounts' values from `ibsim.accounts.valuation` at the placement's
instant. Imports only ibsim.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from ibsim.accounts import valuation
from ibsim.accounts.book import Book, FAGroup, FAProfile, Order
from ibsim.orders.matching import MUST_ALLOCATE, Refused, rejected

# Methods IB computes from the accounts (Equal: the same quantity each), and the user-specified
# ones that read each account's amount in the group (Percent, Ratio, shares, money).
COMPUTED = ("Equal", "EqualQuantity", "NetLiq", "AvailableEquity")
SPECIFIED = ("Percent", "PctChange", "Ratio", "ContractsOrShares", "MonetaryAmount")
PROFILE_TYPES = {1: "Percent", 2: "Ratio", 3: "ContractsOrShares"}


class AllocationError(ValueError):
    """An allocation that cannot be made; the text says why in one sentence."""


def weights(
    group: FAGroup,
    method: str,
    net_liquidation: Mapping[str, float],
    available_funds: Mapping[str, float],
) -> dict[str, float]:
    """Each account's weight under `method` (the group's own, or the order's faMethod)."""
    accounts = group.accounts
    if method in ("Equal", "EqualQuantity"):
        found = dict.fromkeys(accounts, 1.0)
    elif method == "NetLiq":
        found = {a: max(net_liquidation.get(a, 0.0), 0.0) for a in accounts}
    elif method == "AvailableEquity":
        found = {a: max(available_funds.get(a, 0.0), 0.0) for a in accounts}
    elif method in SPECIFIED:
        if len(group.amounts) != len(accounts):
            raise AllocationError(
                f"The FA group {group.name} has no amount per account, which the {method} "
                "method needs: give each account an amount, or use Equal or NetLiq."
            )
        found = {a: max(x, 0.0) for a, x in zip(accounts, group.amounts, strict=True)}
    else:
        raise AllocationError(
            f"The FA method {method!r} is unknown: use one of {', '.join(COMPUTED + SPECIFIED)}."
        )
    return _positive(found, group.name)


def profile_weights(profile: FAProfile) -> dict[str, float]:
    """A profile's weights: its percentages (type 1), ratios (2) or share counts (3)."""
    if profile.type not in PROFILE_TYPES:
        raise AllocationError(
            f"The FA profile {profile.name} has type {profile.type}, not 1, 2 or 3."
        )
    return _positive({a: max(float(x), 0.0) for a, x in profile.allocations.items()}, profile.name)


def _positive(found: dict[str, float], name: str) -> dict[str, float]:
    if not sum(found.values()) > 0:
        raise AllocationError(f"The FA allocation {name} gives no account a positive share.")
    return found


def split(quantity: float, shares: Mapping[str, float]) -> dict[str, float]:
    """Divide `quantity` in proportion to `shares` by the largest-remainder rule, in whole
    units; the parts add up to `quantity` exactly. Ties go to the account listed first."""
    scale = 1 if float(quantity).is_integer() else 10_000
    units = round(quantity * scale)
    total = sum(shares.values())
    if not total > 0:
        raise AllocationError("There is no account left to allocate to.")
    exact = {a: units * w / total for a, w in shares.items()}
    parts = {a: math.floor(x + 1e-9) for a, x in exact.items()}
    order: Sequence[str] = sorted(exact, key=lambda a: -(exact[a] - parts[a]))
    for account in order[: units - sum(parts.values())]:
        parts[account] += 1
    return {a: p / scale for a, p in parts.items()}


def allocate(fill: float, outstanding: Mapping[str, float]) -> dict[str, float]:
    """Divide one fill over what each account still has to get (target less filled). The
    parts add up to the fill and no account passes its target."""
    return split(fill, {a: q for a, q in outstanding.items() if q > 0})


def targets(
    book: Book, catalog: valuation.Instruments, now: datetime, order: Order, fa_profile: str = ""
) -> dict[str, float]:
    """The quantity each account gets of an FA order (faGroup, or faProfile before server
    version 177; at 177 and later profiles are named in faGroup too); {} for an order on one
    account. Raises Refused for an allocation IB would refuse."""
    name = order.fa_group or fa_profile
    if name:
        if not book.master:
            raise Refused(rejected(
                f"The allocation {name} needs a Financial Advisor login, and this login is a "
                "single account's: leave faGroup empty."
            ))  # fmt: skip
        try:
            return split(order.quantity, _weights_of(book, catalog, now, order, name))
        except AllocationError as exc:
            raise Refused(rejected(str(exc))) from None
    if book.master and order.account in ("", book.master, f"{book.master}A"):
        raise Refused(MUST_ALLOCATE)
    if order.account and order.account not in (a.id for a in book.accounts):
        raise Refused(rejected(f"The account {order.account} is not one of this login's accounts."))
    return {}


def _weights_of(
    book: Book, catalog: valuation.Instruments, now: datetime, order: Order, name: str
) -> dict[str, float]:
    group = next((g for g in book.groups if g.name == name), None)
    if group is not None:
        method = order.fa_method or group.method
        figures = {}
        if method in ("NetLiq", "AvailableEquity"):
            figures = {
                key: account_figures(book, catalog, now, group.accounts, key)
                for key in ("NetLiquidation", "AvailableFunds")
            }
        return weights(
            group, method, figures.get("NetLiquidation", {}), figures.get("AvailableFunds", {})
        )
    profile = next((p for p in book.profiles if p.name == name), None)
    if profile is not None:
        return profile_weights(profile)
    raise AllocationError(
        f"The FA group or profile {name} does not exist: use one requestFA lists."
    )


def account_figures(
    book: Book, catalog: valuation.Instruments, now: datetime, accounts: Iterable[str], key: str
) -> dict[str, float]:
    """One account value (NetLiquidation, InitMarginReq, ...) of each account, as a number."""
    out = {}
    for account in accounts:
        values = valuation.account_values(book, catalog, now, account)
        out[account] = float(next(v.value for v in values if v.key == key))
    return out
