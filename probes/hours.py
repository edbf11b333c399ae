"""Opening hours of a hall: daily time ranges on China's working days (weekends off,
public holidays off, make-up working days on, per ``chinese-calendar``), minus local
closures from config. Queue faults that only mean something while people can queue
(stalled, congested) are judged only inside them."""
from __future__ import annotations

import re
from datetime import date, datetime, time as dtime
from zoneinfo import ZoneInfo

import chinese_calendar
from pydantic import field_validator

from monitor.target import Model

_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def _parse_range(text: str) -> tuple[dtime, dtime | None]:
    m = _RANGE.match(text)
    if not m:
        raise ValueError(f"expected a range like 08:30-17:00, got {text!r}")
    h1, m1, h2, m2 = map(int, m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"not a time of day in {text!r}")
    start, end = dtime(h1, m1), None if h2 == 24 else dtime(h2, m2)
    if end is not None and end <= start:
        raise ValueError(f"range {text!r} ends before it starts")
    return start, end


class OpeningHours(Model):
    hours: tuple[str, ...] = ("08:30-12:00", "13:30-17:30")
    workdays_only: bool = True  # China's working-day calendar, make-up days included
    closures: tuple[date, ...] = ()  # local closures (a hall renovated, a typhoon day)
    timezone: str = "Asia/Shanghai"

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for text in v:
            _parse_range(text)
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        ZoneInfo(v)
        return v

    def is_open(self, at: float) -> bool:
        local = datetime.fromtimestamp(at, ZoneInfo(self.timezone))
        day = local.date()
        if day in self.closures:
            return False
        if self.workdays_only:
            try:
                if not chinese_calendar.is_workday(day):
                    return False
            except NotImplementedError:  # a year the calendar does not know yet: weekdays
                if day.weekday() >= 5:
                    return False
        now = local.time()
        return any(start <= now and (end is None or now < end)
                   for start, end in map(_parse_range, self.hours))
