"""IB's daily server reset windows per region (IB's System Status page): when a snapshot must
not run, and when it may. Pure: the standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class ResetWindow:
    """A daily window, in the region's local time, during which IB may be unavailable."""

    start: time
    end: time
    tz: str

    def contains(self, when: datetime) -> bool:
        local = when.astimezone(ZoneInfo(self.tz)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # the window spans midnight

    def ends_at(self, when: datetime) -> datetime:
        """The end of the window `when` falls in (or the next end after it)."""
        local = when.astimezone(ZoneInfo(self.tz))
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return end if end > local else end + timedelta(days=1)


# IB's current schedule (systemstatus): North America 00:15-01:45 ET, Europe 06:25-07:45 CET,
# Asia-Pacific 04:45-06:05 HKT. Schedules change: a region is a setting, not a constant in code.
RESET_WINDOWS = {
    "north_america": ResetWindow(time(0, 15), time(1, 45), "America/New_York"),
    "europe": ResetWindow(time(6, 25), time(7, 45), "Europe/Zurich"),
    "asia": ResetWindow(time(4, 45), time(6, 5), "Asia/Hong_Kong"),
}
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
