"""The top of the book at an instant, from the same one-second atoms as the historical bars.

Streaming ticks, real-time bars and order fills all read the market here, so a fill price is a
price a client could have seen, and a 5-second bar streamed live equals the historical one.
The bid and ask are the BID and ASK one-second atoms' closes; the last trade is the TRADES
atom's close held inside the quote (the midpoint for instruments without trades: indices, FX).
Sizes are hashed from (contract, second), so they are deterministic too. Imports only ibsim.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ibsim.market.atoms import minute_atoms, second_atoms
from ibsim.market.calendars import sessions
from ibsim.market.instruments import Instrument
from ibsim.market.prices import uniform

_SIZE_SALT = 7_001
# displayed sizes: round lots of shares (a CFD shows its stock's), of base currency
_LOTS = {"STK": 100, "CFD": 100, "CASH": 100_000}


@dataclass(frozen=True)
class Quote:
    """The market in one second `at` (epoch seconds), prices in the instrument's units."""

    at: int
    bid: float
    ask: float
    last: float
    bid_size: int
    ask_size: int
    last_size: int  # shares traded in this second (0: no trade)
    open: bool  # inside a full-hours session (outside, the market stands still)

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


def quote_at(inst: Instrument, at: int) -> Quote:
    """The quote in the second starting at `at`; outside a session, the last quote before it."""
    table = sessions(inst.venue, False)
    i = int(np.searchsorted(table.closes, at, side="right"))
    is_open = i < len(table) and int(table.opens[i]) <= at
    if not is_open:  # the market stands at the last second of the previous session
        at = int(table.closes[i - 1]) - 1 if i > 0 else at
    minute, second = divmod(at, 60)
    scale = 10**inst.decimals

    def close(what: str) -> tuple[float, int]:
        closes, volumes = _seconds(inst, minute * 60, what)
        return round(float(closes[second]) / scale, inst.decimals), int(volumes[second])

    bid, _ = close("BID")
    ask, _ = close("ASK")
    last, traded = close("TRADES") if inst.volume_per_minute else ((bid + ask) / 2, 0)
    sizes = [float(uniform(inst.market_id, np.array([at]), _SIZE_SALT + k)[0]) for k in (0, 1)]
    lot = _LOTS.get(inst.sec_type, 1)
    return Quote(
        at=at,
        bid=bid,
        ask=ask,
        last=round(min(max(last, bid), ask), inst.decimals),  # trades print inside the quote
        bid_size=int(1 + sizes[0] * 30) * lot,
        ask_size=int(1 + sizes[1] * 30) * lot,
        last_size=traded if is_open else 0,
        open=is_open,
    )


@lru_cache(maxsize=4096)
def _seconds(inst: Instrument, minute: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The closes and volumes of one minute's 60 one-second atoms: a quote reads one of them,
    and the next 59 quotes of the instrument read the same minute."""
    atoms = second_atoms(inst, minute_atoms(inst, np.array([minute]), what), what)
    return atoms.close, atoms.volume
