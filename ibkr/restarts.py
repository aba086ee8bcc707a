"""When the nightly snapshot runs: after IB's daily server reset of the region
(`ibfacts.resets`), never inside it. Pure: the standard library and `ibfacts` only."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from ibfacts.resets import RESET_WINDOWS

SNAPSHOT_DELAY = timedelta(minutes=15)  # after the window's end, before the snapshot starts


NO_RESET = "none"  # a gateway IB does not reset (the embedded one): North America's hours


def snapshot_time(region: str) -> tuple[time, str]:
    """When the nightly snapshot runs in a region: its reset window's end plus a margin."""
    if region == NO_RESET:
        region = "north_america"
    if region not in RESET_WINDOWS:
        raise ValueError(
            f"unknown IB region {region!r}; use one of {', '.join(RESET_WINDOWS)} or none "
            "(IBW_SNAPSHOT_REGION)"
        )
    window = RESET_WINDOWS[region]
    at = datetime.combine(datetime(2024, 1, 1).date(), window.end) + SNAPSHOT_DELAY
    return at.time(), window.tz
