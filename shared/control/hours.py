"""Office hours as time (pure): whether the team is in at a moment, and when it is next in.

Ranges are local wall-clock times in the configured zone, so a range keeps its hours across a
daylight-saving change; a closed date closes the whole local day.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time, timedelta
from typing import cast

from shared.control.model import WEEKDAYS, OfficeHours, minutes_of

_LOOKAHEAD_DAYS = 400  # a year of closed dates, and a little more


def _local_ranges(hours: OfficeHours, day: datetime) -> list[tuple[int, int]]:
    """The day's ranges in minutes since local midnight (none on a closed date)."""
    if day.date().isoformat() in hours.closedDates:
        return []
    weekly = cast(dict[str, list[str]], hours.weekly)
    return sorted(minutes_of(r) for r in weekly.get(WEEKDAYS[day.weekday()], []))


def is_open(hours: OfficeHours | None, now: datetime) -> bool:
    """True when ``now`` falls in a range (no office hours configured: always open)."""
    if hours is None:
        return True
    local = now.astimezone(zoneinfo.ZoneInfo(hours.timezone))
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in _local_ranges(hours, local))


def next_open(hours: OfficeHours | None, now: datetime) -> datetime | None:
    """The next moment at or after ``now`` the team is in (UTC); None when no range lies ahead."""
    if hours is None or is_open(hours, now):
        return now
    zone = zoneinfo.ZoneInfo(hours.timezone)
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    for offset in range(_LOOKAHEAD_DAYS):
        day = local + timedelta(days=offset)
        for start, _ in _local_ranges(hours, day):
            if offset == 0 and start <= minute:
                continue
            opening = datetime.combine(day.date(), time(start // 60, start % 60), tzinfo=zone)
            return opening.astimezone(UTC)
    return None
