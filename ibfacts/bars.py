"""IB's bar sizes and durations: which barSizeSetting strings exist, what counts as a small
bar, the longest span each small bar size may ask for, and the limits of each duration unit.

Sources: IB's TWS API documentation, "Historical Bar Data" (valid bar sizes, duration units;
https://interactivebrokers.github.io/tws-api/historical_bars.html and the same sections on
https://www.interactivebrokers.com/campus/ibkr-api-page/twsapi-doc/), and "Historical Data
Limitations" (https://interactivebrokers.github.io/tws-api/historical_limitations.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# The 21 exact barSizeSetting strings IB accepts, and their length in seconds. Day, week and
# month bars follow trading sessions; their seconds here are nominal.
BAR_SECONDS: Mapping[str, int] = MappingProxyType({
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600,
    "15 mins": 900, "20 mins": 1_200, "30 mins": 1_800, "1 hour": 3_600, "2 hours": 7_200,
    "3 hours": 10_800, "4 hours": 14_400, "8 hours": 28_800,
    "1 day": 86_400, "1 week": 604_800, "1 month": 2_592_000,
})  # fmt: skip

# "Small bars": bars of 30 seconds or less. Only they fall under IB's hard pacing rules
# (ibfacts.pacing), the step table below, and the six-month history limit (ibfacts.history).
SMALL_BAR_SECONDS = 30


def is_small_bar(bar_size: str) -> bool:
    """Whether `bar_size` (one of BAR_SECONDS) is a bar of 30 seconds or less."""
    return BAR_SECONDS[bar_size] <= SMALL_BAR_SECONDS


# The step table: the longest duration, in seconds, IB serves per small bar size. From the
# "Historical Data Limitations" table of IB's older API documentation, except 1 secs, which
# takes the 2000 S of IBKR Campus' "Max Duration Per Bar Size" table (the older table allowed
# more, and a day of 1-second bars is refused with 162 "invalid step").
SMALL_BAR_STEP: Mapping[str, int] = MappingProxyType(
    {"1 secs": 2_000, "5 secs": 3_600, "10 secs": 14_400, "15 secs": 14_400, "30 secs": 28_800}
)

# durationStr is "<count> <unit>", unit one of S (seconds), D (days), W (weeks), M (months),
# Y (years). Past these counts IB refuses with 321 and asks for years instead ("Historical data
# requests for durations longer than 365 days must be made in years.", quoted in
# https://github.com/ib-api-reloaded/ib_async/issues/229; the S and D limits were also seen on a
# paper account in the rust-ibapi project, github.com/wboayue/rust-ibapi, issue 837).
DURATION_UNITS = "SDWMY"
UNIT_LIMITS: Mapping[str, int] = MappingProxyType({"S": 86_400, "D": 365, "W": 52, "M": 12})
MIN_SECONDS = 30  # "N S" with N < 30: 321 "Historical data requested duration is invalid."

# Years are capped by the login's "Max API Backfill Years" setting (IB's 321 text names it,
# e.g. "Max API Backfill Years=30"); its value on real accounts is not documented, so this is a
# default both sides may override.
MAX_BACKFILL_YEARS = 30
