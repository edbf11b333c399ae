"""Is a site open now? Opening hours on China's working days (make-up days count, and
the config's ``calendar:`` holidays through the target's calendar), minus local closures."""
from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from monitor.core.target import Hours
from monitor.core.workdays import WorkCalendar

_CALENDAR = WorkCalendar()


def is_open(hours: Hours, at: datetime, tz: str, calendar: WorkCalendar | None = None) -> bool:
    local = at.astimezone(ZoneInfo(tz))
    if any(c.from_ <= at < c.to for c in hours.closures):
        return False
    if hours.working_days and not (calendar or _CALENDAR).is_workday(local.date())[0]:
        return False
    return hours.open <= local.strftime("%H:%M") < hours.close


def opened_at(hours: Hours, at: datetime, tz: str) -> datetime:
    """When the site last opened before ``at`` (which it is open at): today's opening
    time, or the end of a closure that ended later today."""
    local = at.astimezone(ZoneInfo(tz))
    hh, mm = map(int, hours.open.split(":"))
    opened = datetime.combine(local.date(), time(hh, mm), local.tzinfo)
    ends = [c.to for c in hours.closures if opened < c.to <= at]
    return max([opened, *ends])
