"""Reporting clocks: when each report a plan demands is due.

A clock is created from a plan's ``ClockSpec`` when the incident reaches one of the
clock's levels (or when it is resolved, for clocks anchored there). Its due time is
computed in the site's time zone: a duration after the anchor, N working days (China's
calendar, make-up days included, see ``workdays``), the end of the next calendar day,
the end of day N of the next month, or a recurring interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Iterable, Literal, Mapping
from zoneinfo import ZoneInfo

from monitor.core.timesource import fixed, iso, parse_iso
from monitor.core.workdays import WorkCalendar
from monitor.plans.model import Audience, ClockSpec, Plan

ClockStatus = Literal["pending", "met", "overdue", "withdrawn"]  # withdrawn: the level no longer asks for it


@dataclass(frozen=True, slots=True)
class Filing:
    """A report filed for a clock."""

    by: str
    at: datetime
    note: str | None
    late: bool | None = None  # None on a recurring clock (each filing is on the incident's reports)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"by": self.by, "at": iso(self.at), "note": self.note}
        if self.late is not None:
            out["late"] = self.late
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Filing":
        return cls(by=d["by"], at=parse_iso(d["at"]), note=d.get("note"), late=d.get("late"))


@dataclass(frozen=True, slots=True)
class Clock:
    """One report an incident owes: what, to whom, by when, and whether it was filed."""

    id: str
    title: str  # zh
    title_en: str
    due_at: datetime  # in the site's zone
    status: ClockStatus
    audience: Audience
    source: str
    anchor: Literal["detected", "upgraded", "resolved"]
    anchored_at: datetime
    estimated: bool  # a working-day deadline past the known calendar (Monday-Friday guessed)
    every_seconds: float | None  # recurring (progress reports): the interval
    seq: int = 1  # which occurrence of a recurring clock
    filed: Filing | None = None
    reminded: bool = False

    @property
    def owed(self) -> bool:
        """Still to be filed: pending or overdue (not met, not withdrawn)."""
        return self.status in ("pending", "overdue")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "title_en": self.title_en, "due_at": iso(self.due_at),
                "status": self.status, "audience": {"to": list(self.audience.to), "cc": list(self.audience.cc)},
                "source": self.source, "anchor": self.anchor, "anchored_at": iso(self.anchored_at),
                "estimated": self.estimated, "every_seconds": self.every_seconds, "seq": self.seq,
                "filed": self.filed.to_json() if self.filed else None, "reminded": self.reminded}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Clock":
        every = d.get("every_seconds")
        return cls(id=d["id"], title=d["title"], title_en=d.get("title_en") or d["title"],
                   due_at=parse_iso(d["due_at"]), status=d["status"],
                   audience=Audience(to=tuple(d["audience"].get("to", ())), cc=tuple(d["audience"].get("cc", ()))),
                   source=d["source"], anchor=d["anchor"], anchored_at=parse_iso(d["anchored_at"]),
                   estimated=bool(d.get("estimated")), every_seconds=float(every) if every is not None else None,
                   seq=int(d.get("seq", 1)), filed=Filing.from_json(d["filed"]) if d.get("filed") else None,
                   reminded=bool(d.get("reminded", False)))

    def title_in(self, lang: str) -> str:
        return self.title_en if lang == "en" else self.title


def _end_of(day: datetime) -> datetime:
    return day.replace(hour=23, minute=59, second=59, microsecond=0)


def _after(anchor: datetime, seconds: float, tz: tzinfo | None) -> datetime:
    # elapsed time: add in UTC (aware arithmetic in one zone is wall-clock, off by the
    # DST shift in a site zone that has one)
    return (anchor.astimezone(timezone.utc) + timedelta(seconds=seconds)).astimezone(tz)


def due_time(spec: ClockSpec, anchor: datetime, tz: ZoneInfo, cal: WorkCalendar) -> tuple[datetime, bool]:
    """(due time, estimated) for a clock anchored at ``anchor``, in the zone ``tz``."""
    due, estimated = _due(spec, anchor, tz, cal)
    return fixed(due), estimated


def _due(spec: ClockSpec, anchor: datetime, tz: ZoneInfo, cal: WorkCalendar) -> tuple[datetime, bool]:
    local = anchor.astimezone(tz)
    kind, amount = spec.parsed_due()
    if kind in ("after", "every"):
        return _after(anchor, amount, tz), False
    if kind == "wd":
        return cal.add_working_days(local, int(amount))
    if kind == "next_day":
        return _end_of(local + timedelta(days=1)), False
    # monthly: end of day N of the month after the anchor
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return _end_of(local.replace(year=year, month=month, day=int(amount))), False


def next_due(due: datetime, every: float, now: datetime) -> tuple[datetime, int]:
    """The next due time of a recurring clock that fell due at ``due``, and how many
    of its occurrences have passed by ``now``. A clock missed many times (a process down
    for hours, an alert that started days ago) jumps straight to its next due time, and
    that time leaves at least half an interval to report in: an alert that arrives 1 h
    59 min late on an hourly clock makes one overdue, not a second one a few seconds on
    (the half-interval is hallmon's reading; the plans say only "every hour")."""
    late = (now - due).total_seconds()
    passed = max(1, math.floor(late / every) + 1)
    jump = max(1, math.floor((late + every / 2) / every) + 1)
    return fixed(_after(due, jump * every, due.tzinfo)), passed


def applies(spec: ClockSpec, level: int, category: str, drill: bool = False) -> bool:
    return spec.applies(level, category, drill)


def new_clock(spec: ClockSpec, anchor: datetime, tz: ZoneInfo, cal: WorkCalendar,
              anchor_name: Literal["detected", "upgraded", "resolved"], category: str = "") -> Clock:
    due, estimated = due_time(spec, anchor, tz, cal)
    kind, amount = spec.parsed_due()
    return Clock(id=spec.id, title=spec.title.zh, title_en=spec.title.en, due_at=due, status="pending",
                 audience=spec.audience_for(category), source=spec.source, anchor=anchor_name,
                 anchored_at=fixed(anchor.astimezone(tz)), estimated=estimated,
                 every_seconds=amount if kind == "every" else None)


def clocks_for(plan_clocks: Iterable[ClockSpec], level: int, category: str, existing: set[str],
               detected: datetime, level_since: datetime, tz: ZoneInfo, cal: WorkCalendar,
               resolved: datetime | None = None, drill: bool = False) -> list[Clock]:
    """The clocks that ``level`` requires and the incident does not have yet.

    ``from: level`` clocks start at ``level_since`` (detection, or the upgrade);
    ``from: detected`` ones at detection whenever they are created; ``from: resolved``
    ones only once ``resolved`` is given. A drill gets only the clocks that allow drills.
    """
    out = []
    for spec in plan_clocks:
        if spec.id in existing or not applies(spec, level, category, drill):
            continue
        if spec.from_ == "resolved":
            if resolved is not None:
                out.append(new_clock(spec, resolved, tz, cal, "resolved", category))
        elif spec.from_ == "detected":
            out.append(new_clock(spec, detected, tz, cal, "detected", category))
        else:
            out.append(new_clock(spec, level_since, tz, cal, "upgraded" if level_since != detected else "detected",
                                 category))
    return out


def spec_of(plan: Plan, clock_id: str) -> ClockSpec | None:
    return next((c for c in plan.clocks if c.id == clock_id), None)
