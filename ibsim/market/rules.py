"""IB's request rules for historical data: bar sizes, durations, whatToShow, end dates.

Each check raises the IBError IB sends (IB's "Message Codes"), in the order IB checks them. The
facts they check against (bar sizes, the step table, unit limits, whatToShow per security type)
are `ibfacts`'; how the gateway judges a request is its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibfacts import bars, history
from ibfacts.bars import MIN_SECONDS, SMALL_BAR_SECONDS, SMALL_BAR_STEP
from ibsim.market import errors

# Day, week and month bars follow sessions; the gateway also takes IB's short spellings 1W, 1M.
SESSION_BARS = {"1 day": "day", "1 week": "week", "1W": "week", "1 month": "month", "1M": "month"}
# Intraday bar size -> seconds.
BAR_SECONDS = {size: s for size, s in bars.BAR_SECONDS.items() if size not in SESSION_BARS}
LEGAL_BAR_SIZES = (
    "1 secs, 5 secs, 10 secs, 15 secs, 30 secs, 1 min, 2 mins, 3 mins, 5 mins, 10 mins, "
    "15 mins, 20 mins, 30 mins, 1 hour, 2 hours, 3 hours, 4 hours, 8 hours, 1 day, 1W, 1M"
)  # IB's own text in the 321 refusal

# The step table by bar seconds: the longest duration, in seconds, IB serves per small bar.
MAX_SMALL_BAR_SPAN = {BAR_SECONDS[size]: span for size, span in SMALL_BAR_STEP.items()}

_IN_YEARS = "Historical data requests for durations longer than {} must be made in years."
_UNIT_NAMES = {"D": "days", "W": "weeks", "M": "months"}
UNIT_LIMITS = {  # unit -> (IB's limit, IB's 321 text beyond it)
    "S": (
        bars.UNIT_LIMITS["S"],
        f"Historical data request for greater than {bars.UNIT_LIMITS['S']} seconds rejected.",
    ),
    **{
        unit: (bars.UNIT_LIMITS[unit], _IN_YEARS.format(f"{bars.UNIT_LIMITS[unit]} {name}"))
        for unit, name in _UNIT_NAMES.items()
    },
}
UNIT_SECONDS = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}

# whatToShow -> the security types it is served for: IB's table (ibfacts.history), inverted.
# The gateway also serves ADJUSTED_LAST for options, which IB's table does not list.
WHAT_TO_SHOW = {
    what: {t for t, whats in history.WHAT_TO_SHOW_FOR.items() if what in whats}
    for what in history.WHAT_TO_SHOW
}
for _sec_types in WHAT_TO_SHOW.values():  # futures options are served as options are
    if "OPT" in _sec_types:
        _sec_types.add("FOP")
WHAT_TO_SHOW["ADJUSTED_LAST"].add("OPT")
LIVE_UPDATE_SOURCES = {"TRADES", "MIDPOINT", "BID", "ASK"}
_DURATION = re.compile(r"^(-?\d+) ([SDWMY])$")
_END_FORMS = (
    re.compile(r"^(\d{8})-(\d{2}):(\d{2}):(\d{2})$"),  # UTC dash form
    re.compile(r"^(\d{8}) {1,2}(\d{2}):(\d{2}):(\d{2})(?: (\S+))?$"),  # zone optional
)


@dataclass(frozen=True)
class Duration:
    count: int
    unit: str

    @property
    def nominal_seconds(self) -> int:
        return self.count * UNIT_SECONDS[self.unit]


@dataclass(frozen=True)
class EndDateTime:
    when: datetime | None  # None: now
    implied_zone: bool  # the deprecated zone-less form (IB answers warning 2174)


def parse_end(value: str, tws_zone: str = "US/Eastern") -> EndDateTime:
    """Every form IB accepts: empty, `yyyymmdd-hh:mm:ss` (UTC), `yyyymmdd hh:mm:ss [zone]`."""
    value = value.strip()
    if not value:
        return EndDateTime(None, False)
    for form in _END_FORMS:
        match = form.match(value)
        if not match:
            continue
        day, hh, mm, ss, *zone = match.groups()
        zone_name = zone[0] if zone else None
        utc_form = form is _END_FORMS[0]
        try:
            naive = datetime.strptime(f"{day} {hh}:{mm}:{ss}", "%Y%m%d %H:%M:%S")
            tz = UTC if utc_form else ZoneInfo(zone_name or tws_zone)
            when = naive.replace(tzinfo=tz).astimezone(UTC)
        except (ValueError, OverflowError, OSError, ZoneInfoNotFoundError) as exc:
            raise errors.INVALID_END_DATE from exc  # OSError: a zone name that is a folder
        return EndDateTime(when, zone_name is None and not utc_form)
    raise errors.INVALID_END_DATE


def parse_duration(value: str) -> Duration:
    value = value.strip()
    if not value:
        raise errors.invalid_request("Historical data request duration not specified.")
    match = _DURATION.match(value)
    if not match:
        raise errors.invalid_request(
            "When specifying a unit, historical data request duration format is "
            "integer{SPACE}unit (S|D|W|M|Y)."
        )
    count, unit = int(match.group(1)), match.group(2)
    if count < 1 or (unit == "S" and count < MIN_SECONDS):
        raise errors.invalid_request("Historical data requested duration is invalid.")
    return Duration(count, unit)


def check_duration_limits(duration: Duration, max_years: int) -> None:
    if duration.unit in UNIT_LIMITS:
        limit, text = UNIT_LIMITS[duration.unit]
        if duration.count > limit:
            raise errors.invalid_request(text)
    elif duration.count > max_years:
        raise errors.invalid_request(
            f"Historical data request for {duration.count} year(s) rejected. "
            f"Max API Backfill Years={max_years}"
        )


def bar_kind(bar_size: str) -> int | str:
    """Seconds for intraday bars, or 'day' / 'week' / 'month'."""
    normalized = " ".join(bar_size.split())
    if normalized in BAR_SECONDS:
        return BAR_SECONDS[normalized]
    if normalized in SESSION_BARS:
        return SESSION_BARS[normalized]
    raise errors.invalid_request(
        f"Historical data bar size setting is invalid. Legal ones are: {LEGAL_BAR_SIZES}"
    )


def check_what_to_show(what: str, sec_type: str) -> None:
    if what not in WHAT_TO_SHOW or sec_type not in WHAT_TO_SHOW[what]:
        raise errors.invalid_request(f"What to show value of {what} rejected.")


def check_adjusted_last(what: str, end: EndDateTime, bar: int | str) -> None:
    if what != "ADJUSTED_LAST":
        return
    if end.when is not None:
        raise errors.invalid_request("End date not supported with adjusted last")
    if bar in ("week", "month"):
        raise errors.invalid_request("Multi day bar size not supported with adjusted last")


def check_format_date(format_date: int) -> None:
    if format_date not in (1, 2, 3):
        raise errors.invalid_request(f"Date formatting selection of {format_date} rejected.")


def check_live_updates(what: str, end: EndDateTime, bar: int | str) -> None:
    if end.when is not None:
        raise errors.invalid_request("End date not supported with live updates")
    if what not in LIVE_UPDATE_SOURCES:
        raise errors.invalid_request("Source price not supported with live updates")
    if isinstance(bar, int) and bar < 5:
        raise errors.invalid_request("Bar size not supported with live updates")


def is_small_bar(bar: int | str) -> bool:
    return isinstance(bar, int) and bar <= SMALL_BAR_SECONDS


def check_step(bar: int | str, duration: Duration) -> None:
    """Small bars: a span longer than the step table allows is IB's 'Time length exceed max.'"""
    if is_small_bar(bar) and duration.nominal_seconds > MAX_SMALL_BAR_SPAN[bar]:
        raise errors.time_length_exceeded()


def soft_throttle_delay(bars: int, bar: int | str, bars_per_second: float) -> float:
    """IB's soft throttle for bars of 1 min and longer: the bigger the answer, the longer it
    takes. Small bars are paced by the hard rules instead."""
    if is_small_bar(bar) or bars_per_second <= 0:
        return 0.0
    return bars / bars_per_second
