"""Settings of one embedded gateway. The defaults are IB's; tests shrink the time constants."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import time

from ibsim.book import Book
from ibsim.clock import Clock, SystemClock

SERVER_VERSION = 178  # ib_async's maximum, and below the protobuf dialect (201+)


@dataclass(frozen=True)
class PacingRules:
    """IB's hard limits for bars of 30 s or less (and head-timestamp requests), in seconds."""

    window: float = 600.0  # rolling window ...
    window_limit: int = 60  # ... holding at most this many requests (BID_ASK counts 2)
    identical_window: float = 15.0  # no identical request within this span
    burst_window: float = 2.0  # fewer than `burst_limit` per contract/exchange/whatToShow
    burst_limit: int = 6
    max_open: int = 50  # simultaneous open historical requests (322 beyond)
    small_bar_max_age_days: int = 183  # no bars of 30 s or less older than six months
    expired_future_years: int = 2  # history of expired futures ends this long after expiry
    max_backfill_years: int = 30  # the 'Max API Backfill Years' cap for `N Y` durations

    def scaled(self, factor: float) -> PacingRules:
        """The same rules with every window times `factor` (time-compressed tests)."""
        return replace(
            self,
            window=self.window * factor,
            identical_window=self.identical_window * factor,
            burst_window=self.burst_window * factor,
        )


@dataclass(frozen=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 4002  # IB Gateway's paper port
    max_server_version: int = SERVER_VERSION
    accounts: tuple[str, ...] = ("DU123456",)  # used when no `book` is given: one paper account
    book: Book | None = None  # the accounts and what is in them (ibsim.book)
    next_valid_id: int = 1
    clock: Clock = field(default_factory=SystemClock)
    pacing: PacingRules = field(default_factory=PacingRules)
    # IB's "soft" throttle for bars of 1 min and longer: the answer waits bars / rate seconds.
    soft_throttle_bars_per_second: float = 25_000.0
    # Real seconds between keepUpToDate updates (IB resends the open bar every 4-6 s).
    update_interval: float = 5.0
    # IB Gateway's daily auto-restart (research/ib-rules.md §6): real seconds the port refuses
    # connections after the clients are dropped. One observed restart let the client back in
    # after about 80 s (LEAN#242), retry delay included.
    restart_refusal: float = 60.0
    # Restart by itself every day at this wall-clock time in `restart_zone` (None: only when
    # asked, Gateway.restart). IBC's AutoRestartTime is local time; IB's resets follow New York.
    restart_at: time | None = None
    restart_zone: str = "America/New_York"
