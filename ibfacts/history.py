"""What IB's historical data service serves: how far back, for which contracts, which
whatToShow per security type, and which requests take no end date.

Sources: IB's TWS API documentation, "Historical Data Limitations"
(https://interactivebrokers.github.io/tws-api/historical_limitations.html) and "Historical Bar
Data" (https://interactivebrokers.github.io/tws-api/historical_bars.html, section whatToShow;
the same tables on https://www.interactivebrokers.com/campus/ibkr-api-page/twsapi-doc/), and
IB's "Message Codes" page for the refusals (10339, 321).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType

# Bars of 30 seconds or less are served for the last six months only: IB answers 162 "Historical
# data requests for bars of 30 secs or less are limited to the last 6 months."
SMALL_BAR_MAX_AGE = timedelta(days=183)

# Expired futures keep their history for two years after expiry; expired options, futures
# options and warrants keep none (162/166 "HMDS Expired Contract Violation").
EXPIRED_FUTURE_YEARS = 2
NO_EXPIRED_HISTORY = frozenset({"OPT", "FOP", "WAR", "IOPT"})

# Requests that must leave endDateTime empty (they count back from now): continuous futures
# (10339 "Setting end date/time for continuous future security type is not allowed") and
# dividend-adjusted bars (321 "End date not supported with adjusted last").
NO_END_DATE_SEC_TYPES = frozenset({"CONTFUT"})
NO_END_DATE_WHAT = frozenset({"ADJUSTED_LAST"})

# Which whatToShow IB serves historical bars (and head timestamps) for, per security type. Forex
# and CFDs have no trades (IB's table lists MIDPOINT, BID, ASK and BID_ASK for both, TRADES for
# neither); an index has only its computed value (TRADES); dividend-adjusted prices exist for
# stocks only; crypto's trades are AGGTRADES (trades aggregated across the venue's fills) and its
# TRADES is refused; a mutual fund has its quote (the NAV) only; bonds have their quotes, trades
# and the yields of bid, ask and last; the volatilities of an underlying (its options' 30-day
# implied volatility and its own historical volatility; open, high, low and close are
# volatilities, volume and WAP are not applicable) exist for stocks and indices. IB refuses
# anything else with 321 "What to show value of ... rejected."
QUOTE_WHAT = ("MIDPOINT", "BID", "ASK", "BID_ASK")
YIELD_WHAT = ("YIELD_BID", "YIELD_ASK", "YIELD_BID_ASK", "YIELD_LAST")
VOLATILITY_WHAT = ("OPTION_IMPLIED_VOLATILITY", "HISTORICAL_VOLATILITY")
WHAT_TO_SHOW = (
    "TRADES", "ADJUSTED_LAST", *QUOTE_WHAT, "AGGTRADES", *YIELD_WHAT, *VOLATILITY_WHAT,
)  # fmt: skip
# Bars of quotes, yields and volatilities carry no volume
NO_VOLUME_WHAT = (*QUOTE_WHAT, *YIELD_WHAT, *VOLATILITY_WHAT)
WHAT_TO_SHOW_FOR: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "STK": ("TRADES", "ADJUSTED_LAST", *QUOTE_WHAT, *VOLATILITY_WHAT),
    "FUT": ("TRADES", *QUOTE_WHAT),
    "CONTFUT": ("TRADES", *QUOTE_WHAT),
    "OPT": ("TRADES", *QUOTE_WHAT),
    "CASH": QUOTE_WHAT,
    "IND": ("TRADES", *VOLATILITY_WHAT),
    "CFD": QUOTE_WHAT,
    "FUND": QUOTE_WHAT,
    "CRYPTO": ("AGGTRADES", *QUOTE_WHAT),
    "BOND": ("TRADES", *QUOTE_WHAT, *YIELD_WHAT),
})  # fmt: skip
