"""IB's pacing limits for historical data, as numbers: how many requests, how often.

Source: IB's TWS API documentation, "Historical Data Limitations", section "Pacing Violations
for Small Bars (30 secs or less)"
(https://interactivebrokers.github.io/tws-api/historical_limitations.html, and the same section
on https://www.interactivebrokers.com/campus/ibkr-api-page/twsapi-doc/). The hard limits apply
to bars of 30 seconds or less and to head-timestamp requests; bars of 1 minute and longer only
meet a soft throttle (the bigger the answer, the slower it comes). A breach is answered with 162
"Historical data request pacing violation"; more open requests than allowed with 322.
"""

from __future__ import annotations

WINDOW_SECONDS = 600.0  # a rolling ten minutes ...
WINDOW_LIMIT = 60  # ... holding at most 60 requests (BID_ASK counts twice)
IDENTICAL_WINDOW_SECONDS = 15.0  # no identical request within 15 seconds
BURST_WINDOW_SECONDS = 2.0  # within 2 seconds, fewer than BURST_LIMIT requests ...
BURST_LIMIT = 6  # ... for one contract, exchange and whatToShow
MAX_OPEN_REQUESTS = 50  # simultaneous open historical requests (322 beyond)


def weight(what_to_show: str) -> int:
    """A request's cost in the ten-minute window: BID_ASK counts twice (IB asks once for the
    bids and once for the asks), anything else once."""
    return 2 if what_to_show.upper() == "BID_ASK" else 1
