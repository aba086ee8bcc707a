"""`Work`: what the order engine remembers about one order between evaluations, beyond the
Book's `Order`: its planned times, trailing stop, trigger, conditions and FA split.

The engine (ibsim.orders.engine) creates and changes it; its fills (ibsim.orders.fills) read
it and count each account's executions in it. Imports only ibsim.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ibsim.accounts.book import Order
from ibsim.market.instruments import Instrument
from ibsim.orders import matching


@dataclass
class Work:
    """An order and what the engine remembers about it between evaluations."""

    order: Order
    inst: Instrument | None  # None: a scenario's order on a conId the catalog does not know
    expires_at: int | None = None  # DAY / GTD: cancelled from this second (epoch)
    close_at: int | None = None  # MOC / LOC: the close they execute at
    window: tuple[int, int] | None = None  # VWAP / TWAP: slices from start to end
    past_end: bool = False  # VWAP / TWAP: allowPastEndTime
    stop: float | None = None  # TRAIL: the current stop
    triggered: bool = False
    armed: bool = False  # its conditions (if any) have been met
    targets: dict[str, float] = field(default_factory=dict)  # FA: account -> quantity
    allocated: dict[str, float] = field(default_factory=dict)  # FA: account -> filled
    fills: dict[str, tuple[float, float]] = field(default_factory=dict)  # shares, value

    @property
    def market(self) -> Instrument:
        """The instrument of an order the engine works (every such order has one)."""
        assert self.inst is not None
        return self.inst

    @property
    def terms(self) -> matching.Terms:
        """What the order-type logic (ibsim.orders.matching) reads of the order."""
        o = self.order
        return matching.Terms(
            o.action, o.order_type, o.quantity, o.limit_price, o.aux_price, o.trailing_percent,
            o.trail_stop_price if self.stop is None else self.stop, o.lmt_price_offset, o.tif,
            o.good_till_date, o.algo_strategy,
        )  # fmt: skip
