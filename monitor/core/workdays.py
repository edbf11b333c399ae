"""China's official working days, with make-up working days (调休).

``chinese_calendar`` knows only the years it shipped with (1.11.0 stops at 2026). The
config can add a year's holidays and make-up days; a date past both falls back to
Monday–Friday, and the result says it is an estimate (logged once per year and counted
in ``hallmon_calendar_estimates_total``) — never a crash, never a missing deadline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable, Protocol

import chinese_calendar
import structlog

log = structlog.get_logger("hallmon.workdays")

_warned_years: set[int] = set()


class CalendarSettings(Protocol):
    """The config's ``calendar:`` section (``monitor.config.model.CalendarConfig``)."""

    @property
    def holidays(self) -> Iterable[date]: ...

    @property
    def workdays(self) -> Iterable[date]: ...

    @property
    def years(self) -> Iterable[int]: ...
estimates = 0  # read by the metrics collector


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date] = frozenset()  # extra days off from config
    workdays: frozenset[date] = frozenset()  # extra make-up working days from config
    known_years: frozenset[int] = field(default_factory=frozenset)  # years the config fully defines

    @classmethod
    def from_config(cls, settings: CalendarSettings) -> "WorkCalendar":
        """The calendar with the config's holidays and make-up days. Build it once per
        config (``Config.work_calendar``) and hand that one to every user: clocks,
        opening hours, rosters, ``plan explain``."""
        return cls(holidays=frozenset(settings.holidays), workdays=frozenset(settings.workdays),
                   known_years=frozenset(settings.years))

    def is_workday(self, day: date) -> tuple[bool, bool]:
        """(is it a working day, is that an estimate)."""
        global estimates
        if day in self.workdays:
            return True, False
        if day in self.holidays:
            return False, False
        if day.year not in self.known_years:
            try:
                return chinese_calendar.is_workday(day), False
            except NotImplementedError:
                if day.year not in _warned_years:
                    _warned_years.add(day.year)
                    log.warning("calendar_year_unknown", year=day.year,
                                fallback="monday-friday", hint="add the year's holidays to the config")
                estimates += 1
                return day.weekday() < 5, True
        return day.weekday() < 5, False

    def add_working_days(self, start: datetime, n: int) -> tuple[datetime, bool]:
        """The same local time on the n-th working day after ``start`` (aware datetime)."""
        day, estimated, left = start.date(), False, n
        while left > 0:
            day += timedelta(days=1)
            work, guess = self.is_workday(day)
            estimated |= guess
            if work:
                left -= 1
        return start.replace(year=day.year, month=day.month, day=day.day), estimated
