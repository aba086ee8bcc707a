"""IB's daily server resets: the window, per region, in which IB may be unavailable.

Source: IB's System Status page (https://www.interactivebrokers.com/en/software/systemStatus.php)
lists the daily reset per region: North America 00:15-01:45 New York, Europe 06:25-07:45 Central
European time, Asia-Pacific 04:45-06:05 Hong Kong. IB changes these from time to time, so a
region is a setting of the project, not a constant in its code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")  # where IB's day (fills, completed orders) turns


def ib_day(when: datetime) -> date:
    """IB's day at `when`: the date in New York."""
    return when.astimezone(NEW_YORK).date()


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


RESET_WINDOWS: Mapping[str, ResetWindow] = MappingProxyType({
    "north_america": ResetWindow(time(0, 15), time(1, 45), "America/New_York"),
    "europe": ResetWindow(time(6, 25), time(7, 45), "Europe/Zurich"),
    "asia": ResetWindow(time(4, 45), time(6, 5), "Asia/Hong_Kong"),
})  # fmt: skip
