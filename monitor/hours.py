"""Is a site open now? Opening hours on China's working days (make-up days count),
minus local closures."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from .target import Hours
from .workdays import WorkCalendar

_CALENDAR = WorkCalendar()


def is_open(hours: Hours, at: datetime, tz: str, calendar: WorkCalendar = _CALENDAR) -> bool:
    local = at.astimezone(ZoneInfo(tz))
    if any(c.from_ <= at < c.to for c in hours.closures):
        return False
    if hours.working_days and not calendar.is_workday(local.date())[0]:
        return False
    return hours.open <= local.strftime("%H:%M") < hours.close
