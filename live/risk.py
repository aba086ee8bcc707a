"""Account risk limits: a daily loss, a position per contract, gross and net exposure.

Where `live.safety` caps one order on its own, these limits look at what an account holds. The
live service watches each account's figures (`breaches`, run by `RiskGuard.check_live`): a
breach blocks the account, journaled so a restart cannot lift it, and a hard one (by default
the daily loss) also pulls IB's global cancel, the kill switch of `ibw order cancel-all`. Before
every order goes out the guard asks whether it would take the account past a limit
(`intent_refusal`): an order that shrinks a position passes the position and exposure limits,
and a blocked account passes nothing until `ibw order unblock` lifts its block.

The figures are IB's own, as the service subscribes to them (live.intraday): the daily P&L of
reqPnL ("daily P&L for the account", since the previous close, in the base currency: TWS API,
"Profit & Loss", interactivebrokers.github.io/tws-api/pnl.html), positions from reqPositions, and
each position's market value from reqPnLSingle.
IB's reqGlobalCancel cancels every open order of the login, whoever placed it (TWS API,
"Cancelling Orders", .../cancel_order.html).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ibkr.exceptions import IBWError
from live.intents import OrderIntent
from live.journal import Journal

log = logging.getLogger("ibw.live.risk")
LIMIT_NAMES = ("daily_loss", "max_position", "max_gross", "max_net")


class RiskLimitHit(IBWError):
    """An account is past a risk limit, or an order would take it there."""

    default_cause = "the account is past a risk limit"
    default_fix = "reduce the account's risk or raise the limit in the live config's risk section"


@dataclass(frozen=True)
class Exposure:
    """One account's intraday figures as the live service knows them (from IB's P&L,
    positions and portfolio subscriptions)."""

    account: str
    daily_pnl: float | None  # IB's daily P&L in the account's base currency; None until known
    positions: Mapping[int, float]  # conId -> signed quantity
    values: Mapping[int, float]  # conId -> signed market value (base currency)

    @property
    def gross(self) -> float:
        return sum(abs(v) for v in self.values.values())

    @property
    def net(self) -> float:
        return sum(self.values.values())


@dataclass(frozen=True)
class RiskLimits:
    """Per-account limits; None is no limit. `daily_loss` is a positive amount in the base
    currency (a daily P&L at or below minus it breaches); `max_position` caps |quantity| of any
    one contract, `max_gross` the sum of |market value|, `max_net` |sum of market value|.
    `hard` names the limits whose breach also cancels every open order. An account named in
    `accounts` is held to its own limits instead (the config merges each entry over these)."""

    daily_loss: float | None = None
    max_position: float | None = None
    max_gross: float | None = None
    max_net: float | None = None
    hard: frozenset[str] = frozenset({"daily_loss"})
    accounts: Mapping[str, RiskLimits] = field(default_factory=dict)

    def of(self, account: str) -> RiskLimits:
        """The limits `account` is held to."""
        return self.accounts.get(account, self)

    @property
    def sized(self) -> bool:
        """True if any limit looks at positions (an order is then judged against them)."""
        return any(v is not None for v in (self.max_position, self.max_gross, self.max_net))


@dataclass(frozen=True)
class Breach:
    """One limit an account is past; `sentence` names the figure, the limit and the fix."""

    account: str
    limit: str
    sentence: str
    hard: bool


def breaches(limits: RiskLimits, exposure: Exposure) -> list[Breach]:
    """Every limit the account is past now, in LIMIT_NAMES order."""
    mine, account = limits.of(exposure.account), exposure.account
    causes: dict[str, str] = {}
    pnl = exposure.daily_pnl
    if mine.daily_loss is not None and pnl is not None and pnl <= -mine.daily_loss:
        causes["daily_loss"] = (
            f"its daily P&L {pnl:,.2f} is at or below the loss limit of -{mine.daily_loss:,.2f}"
        )
    if mine.max_position is not None and exposure.positions:
        con_id, quantity = max(exposure.positions.items(), key=lambda p: abs(p[1]))
        if abs(quantity) > mine.max_position:
            causes["max_position"] = (
                f"its position of {quantity:g} in conId {con_id} exceeds the limit of "
                f"{mine.max_position:g}"
            )
    if mine.max_gross is not None and exposure.gross > mine.max_gross:
        causes["max_gross"] = (
            f"its gross exposure {exposure.gross:,.2f} exceeds the limit of {mine.max_gross:,.2f}"
        )
    if mine.max_net is not None and abs(exposure.net) > mine.max_net:
        causes["max_net"] = (
            f"its net exposure {exposure.net:,.2f} exceeds the limit of ±{mine.max_net:,.2f}"
        )
    return [
        Breach(account, name, _sentence(account, cause, name, blocked=True), name in mine.hard)
        for name, cause in causes.items()
    ]


def intent_refusal(
    limits: RiskLimits,
    exposure: Exposure,
    con_id: int,
    quantity: float,
    unit_value: float | None,
) -> str | None:
    """Why an order of `quantity` (signed: a sale is negative) of `con_id` would take the
    account past max_position, max_gross or max_net if it filled at `unit_value` (price x
    multiplier, base currency), or None if it would not. An order that shrinks the position
    passes."""
    account = exposure.account
    mine = limits.of(account)
    if not mine.sized:
        return None
    held = exposure.positions.get(con_id, 0.0)
    after = held + quantity
    if abs(after) <= abs(held):
        return None
    if mine.max_position is not None and abs(after) > mine.max_position:
        cause = (
            f"it would take the position in conId {con_id} from {held:g} to {after:g}, past "
            f"the limit of {mine.max_position:g}"
        )
        return _sentence(account, cause, "max_position", blocked=False)
    if mine.max_gross is None and mine.max_net is None:
        return None
    if unit_value is None:
        cause = f"no price is known for conId {con_id} to check the exposure limits"
        fix = "give a limit price or subscribe to the contract's market data"
        return RiskLimitHit(cause, fix, subject=f"account {account}").sentence
    now = exposure.values.get(con_id, held * unit_value)
    gross = exposure.gross - abs(now) + abs(after * unit_value)
    net = exposure.net - now + after * unit_value
    if mine.max_gross is not None and gross > mine.max_gross:
        cause = f"it would take the gross exposure to {gross:,.2f}, past {mine.max_gross:,.2f}"
        return _sentence(account, cause, "max_gross", blocked=False)
    if mine.max_net is not None and abs(net) > mine.max_net:
        cause = f"it would take the net exposure to {net:,.2f}, past ±{mine.max_net:,.2f}"
        return _sentence(account, cause, "max_net", blocked=False)
    return None


def _sentence(account: str, cause: str, limit: str, *, blocked: bool) -> str:
    if blocked:
        fix = (
            f"reduce the account's risk or raise {limit} in the live config's risk section, "
            f"then lift the block with `ibw order unblock {account} --reason ...`"
        )
    else:
        fix = f"reduce the order or raise {limit} in the live config's risk section"
    return RiskLimitHit(cause, fix, subject=f"account {account}").sentence


class RiskGuard:
    """The live service's risk limits: it checks the accounts' figures (`check_live`, blocking
    breached accounts and cancelling every open order on a hard breach) and judges each order
    before it is sent (`refusal`). `exposure(account)` is the service's current view of an
    account, None while it does not know it yet."""

    def __init__(
        self,
        limits: RiskLimits,
        exposure: Callable[[str], Exposure | None],
        journal: Journal,
        on_breach: Callable[[Breach], None] | None = None,
    ) -> None:
        self.limits = limits
        self.exposure = exposure
        self.journal = journal
        self.on_breach = on_breach
        # (account, limit) past its limit at the last check: a block the user lifts while the
        # breach lasts stays lifted; the next breach, after a return within the limit, blocks.
        self._breached: set[tuple[str, str]] = set()

    def check_live(self, accounts: Iterable[str]) -> list[Breach]:
        """Block every account past a limit (once per breach) and, on a hard breach, queue
        IB's global cancel; returns the new breaches. Accounts without figures are skipped."""
        new: list[Breach] = []
        for account in accounts:
            exposure = self.exposure(account)
            if exposure is None:
                continue
            now = breaches(self.limits, exposure)
            seen = {(b.account, b.limit) for b in now}
            for breach in now:
                if (account, breach.limit) in self._breached:
                    continue
                if self.journal.block(account, breach.limit, breach.sentence):
                    new.append(breach)
            self._breached = {k for k in self._breached if k[0] != account} | seen
        for breach in new:
            log.warning("risk: %s The account is blocked.", breach.sentence)
        hard = [b for b in new if b.hard]
        if hard:
            self.journal.request_global_cancel(hard[0].sentence)
            log.warning("risk: a hard limit is breached: every open order is being cancelled")
        for breach in new:
            if self.on_breach is not None:
                self.on_breach(breach)
        return new

    def knows(self, account: str) -> bool:
        """False while an order on `account` cannot be judged: its limits look at positions and
        the service has no figures for it yet (the order then waits, it is not refused)."""
        if not account or not self.limits.of(account).sized:
            return True
        return self.exposure(account) is not None

    def refusal(self, intent: OrderIntent, unit_value: float | None) -> str | None:
        """Why the intent may not be sent (its account is blocked, or it would take the account
        past a limit), or None. An FA allocation is refused while any account is blocked; its
        split over the sub-accounts is IB's, so it is not judged against their positions."""
        blocks = self.journal.risk_blocks(intent.account or None)
        if blocks:
            block = blocks[0]
            return RiskLimitHit(
                f"account {block.account} is blocked since {block.blocked_at[:19]} ({block.limit})",
                f"lift the block with `ibw order unblock {block.account} --reason ...`",
                subject=f"order {intent.key}",
            ).sentence
        exposure = self.exposure(intent.account) if intent.account else None
        if exposure is None:
            return None  # an allocation, or no figures yet: the caller asks `knows`
        quantity = intent.quantity_at(unit_value or 0.0)
        signed = quantity if intent.action == "BUY" else -quantity
        return intent_refusal(self.limits, exposure, intent.con_id, signed, unit_value)
