"""Settings of one embedded gateway. The defaults are IB's; tests shrink the time constants."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import time

from ibfacts import pacing
from ibfacts.bars import MAX_BACKFILL_YEARS
from ibfacts.history import EXPIRED_FUTURE_YEARS, SMALL_BAR_MAX_AGE
from ibsim.accounts.book import Book
from ibsim.clock import Clock, SystemClock
from ibsim.fault_script import Fault

SERVER_VERSION = 178  # ib_async's maximum, and below the protobuf dialect (201+)


@dataclass(frozen=True)
class PacingRules:
    """IB's hard limits for bars of 30 s or less (and head-timestamp requests), in seconds, and
    how far back IB serves. The defaults are IB's (`ibfacts`); tests shrink or relax them."""

    window: float = pacing.WINDOW_SECONDS  # rolling window ...
    window_limit: int = pacing.WINDOW_LIMIT  # ... holding at most this many (BID_ASK counts 2)
    identical_window: float = pacing.IDENTICAL_WINDOW_SECONDS  # no identical request within it
    burst_window: float = pacing.BURST_WINDOW_SECONDS  # fewer than `burst_limit` in it ...
    burst_limit: int = pacing.BURST_LIMIT  # ... per contract/exchange/whatToShow
    max_open: int = pacing.MAX_OPEN_REQUESTS  # simultaneous open historical requests (322 beyond)
    small_bar_max_age_days: int = SMALL_BAR_MAX_AGE.days  # no bars of 30 s or less older
    expired_future_years: int = EXPIRED_FUTURE_YEARS  # expired futures' history ends after this
    max_backfill_years: int = MAX_BACKFILL_YEARS  # the 'Max API Backfill Years' cap for `N Y`

    def scaled(self, factor: float) -> PacingRules:
        """The same rules with every window times `factor` (time-compressed tests)."""
        return replace(
            self,
            window=self.window * factor,
            identical_window=self.identical_window * factor,
            burst_window=self.burst_window * factor,
        )


@dataclass(frozen=True)
class Commissions:
    """IB-like tiered commissions per execution (ibsim.orders.fills charges each fill), in the
    instrument's currency: stocks and CFDs per share with a minimum and a cap of a share of the
    trade value, futures and options per contract, FX in basis points of the value, crypto a
    share of the value with a minimum and a cap (IB's 0.12-0.18%, min USD 1.75, max 1%), US
    Treasuries a share of the face value with a minimum (IB's 0.002%, min USD 5), a mutual fund
    a flat fee (IB's USD 14.95 for transaction-fee funds)."""

    per_share: float = 0.005
    stock_min: float = 1.0
    stock_max_rate: float = 0.01  # of the trade value
    per_future: float = 0.85
    per_option: float = 0.65
    option_min: float = 1.0
    fx_rate: float = 0.00002  # 0.2 basis points
    fx_min: float = 2.0
    crypto_rate: float = 0.0018
    crypto_min: float = 1.75
    crypto_max_rate: float = 0.01
    bond_face_rate: float = 0.00002  # of the face value: a bond's value at a price of 100
    bond_min: float = 5.0
    fund_fee: float = 14.95

    def charge(self, sec_type: str, shares: float, price: float, multiplier: float) -> float:
        """The commission of one execution, rounded to cents and never below one cent."""
        value = abs(shares) * price * multiplier
        if sec_type == "FUT":
            amount = self.per_future * abs(shares)
        elif sec_type == "OPT":
            amount = max(self.per_option * abs(shares), self.option_min)
        elif sec_type == "CASH":
            amount = max(self.fx_rate * value, self.fx_min)
        elif sec_type == "CRYPTO":
            amount = min(
                max(self.crypto_rate * value, self.crypto_min), self.crypto_max_rate * value
            )
        elif sec_type == "BOND":
            amount = max(self.bond_face_rate * abs(shares) * 100 * multiplier, self.bond_min)
        elif sec_type == "FUND":
            amount = self.fund_fee
        else:
            amount = min(
                max(self.per_share * abs(shares), self.stock_min), self.stock_max_rate * value
            )
        return max(round(amount, 2), 0.01)


@dataclass(frozen=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 4002  # IB Gateway's paper port
    max_server_version: int = SERVER_VERSION
    accounts: tuple[str, ...] = ("DU123456",)  # used when no `book` is given: one paper account
    book: Book | None = None  # the accounts and what is in them (ibsim.accounts.book)
    next_valid_id: int = 1
    clock: Clock = field(default_factory=SystemClock)
    pacing: PacingRules = field(default_factory=PacingRules)
    # IB's "soft" throttle for bars of 1 min and longer: the answer waits bars / rate seconds.
    soft_throttle_bars_per_second: float = 25_000.0
    # Real seconds between keepUpToDate updates (IB resends the open bar every 4-6 s).
    update_interval: float = 5.0
    # IB Gateway's daily auto-restart (its Auto Restart setting): real seconds the port refuses
    # connections after the clients are dropped. One observed restart let the client back in
    # after about 80 s (LEAN#242), retry delay included.
    restart_refusal: float = 60.0
    # Restart by itself every day at this wall-clock time in `restart_zone` (None: only when
    # asked, Gateway.restart). IBC's AutoRestartTime is local time; IB's resets follow New York.
    restart_at: time | None = None
    restart_zone: str = "America/New_York"
    # Streaming (ibsim.handlers.streaming, IB's market data pages). Real seconds between sends
    # of what changed: IB refreshes US quotes every 250 ms.
    stream_interval: float = 0.25
    # Account subscriptions (ibsim.handlers.portfolio), in gateway seconds, so a fast or manual
    # clock speeds them up. reqAccountUpdates, reqAccountUpdatesMulti and reqAccountSummary are
    # sent again this often, and after every fill in their accounts: IB refreshes account
    # values every 3 minutes (TWS API "Account Updates" and "Profit And Loss" pages).
    account_update_interval: float = 180.0
    # reqPnL and reqPnLSingle: a pnl / pnlSingle this often (IB's about once a second).
    pnl_interval: float = 1.0
    # Market data lines per login: each reqMktData and reqRealTimeBars holds one (101 beyond).
    market_data_lines: int = 100
    # Simultaneous tick-by-tick subscriptions (10190 beyond); None: 5 % of the lines, at least 1.
    tick_by_tick_lines: int | None = None
    # Gateway seconds delayed market data (reqMarketDataType 3 or 4) lags behind: 15 minutes.
    delayed_data_lag: int = 900
    # A fault script run from the gateway's start (ibsim.fault_script.load_faults).
    faults: tuple[Fault, ...] = ()
    # The order engine (ibsim.orders.engine): real seconds between evaluations of the working
    # orders, at the gateway's time; every placement or modification is also evaluated at once.
    order_interval: float = 0.1
    commissions: Commissions = field(default_factory=Commissions)
    # One commission report in four (by execId) comes this many real seconds after its fill.
    late_commission: float = 0.5
    # Gateway seconds a VWAP or TWAP order without startTime/endTime spreads its slices over.
    algo_span: float = 600.0
    # whatIf: the initial margin a trade adds, as a share of its value when the instrument's
    # own rate is unknown (stocks and the others use ibsim.accounts.valuation.MARGIN_RATES).
    what_if_margin: float = 0.25
