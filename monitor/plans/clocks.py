"""Reporting clocks: when each report a plan demands is due.

A clock is created from a plan's ``ClockSpec`` when the incident reaches one of the
clock's levels (or when it is resolved, for clocks anchored there). Its due time is
computed in the site's time zone: a duration after the anchor, N working days (China's
calendar, make-up days included, see ``workdays``), the end of the next calendar day,
the end of day N of the next month, or a recurring interval.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from monitor.core.workdays import WorkCalendar
from monitor.plans.model import ClockSpec, Plan


def _end_of(day: datetime) -> datetime:
    return day.replace(hour=23, minute=59, second=59, microsecond=0)


def due_time(spec: ClockSpec, anchor: datetime, tz: ZoneInfo, cal: WorkCalendar) -> tuple[datetime, bool]:
    """(due time, estimated) for a clock anchored at ``anchor``."""
    local = anchor.astimezone(tz)
    kind, amount = spec.parsed_due()
    if kind in ("after", "every"):
        # elapsed time: add in UTC (aware arithmetic in one zone is wall-clock, off by the
        # DST shift in a site zone that has one)
        return (anchor.astimezone(timezone.utc) + timedelta(seconds=amount)).astimezone(tz), False
    if kind == "wd":
        return cal.add_working_days(local, int(amount))
    if kind == "next_day":
        return _end_of(local + timedelta(days=1)), False
    # monthly: end of day N of the month after the anchor
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return _end_of(local.replace(year=year, month=month, day=int(amount))), False


def applies(spec: ClockSpec, level: int, category: str) -> bool:
    return level in spec.levels and (not spec.categories or category in spec.categories)


def new_clock(spec: ClockSpec, anchor: datetime, tz: ZoneInfo, cal: WorkCalendar,
              anchor_name: str) -> dict[str, Any]:
    due, estimated = due_time(spec, anchor, tz, cal)
    kind, amount = spec.parsed_due()
    return {
        "id": spec.id,
        "title": spec.title.zh, "title_en": spec.title.en,
        "due_at": due.isoformat(timespec="seconds"),
        "status": "pending",
        "audience": {"to": list(spec.audience.to), "cc": list(spec.audience.cc)},
        "source": spec.source,
        "anchor": anchor_name, "anchored_at": anchor.astimezone(tz).isoformat(timespec="seconds"),
        "estimated": estimated,
        "every_seconds": amount if kind == "every" else None,
        "seq": 1,
        "filed": None,
    }


def clocks_for(plan_clocks: Iterable[ClockSpec], level: int, category: str, existing: set[str],
               detected: datetime, level_since: datetime, tz: ZoneInfo, cal: WorkCalendar,
               resolved: datetime | None = None) -> list[dict[str, Any]]:
    """The clocks that ``level`` requires and the incident does not have yet.

    ``from: level`` clocks start at ``level_since`` (detection, or the upgrade);
    ``from: detected`` ones at detection whenever they are created; ``from: resolved``
    ones only once ``resolved`` is given.
    """
    out = []
    for spec in plan_clocks:
        if spec.id in existing or not applies(spec, level, category):
            continue
        if spec.from_ == "resolved":
            if resolved is not None:
                out.append(new_clock(spec, resolved, tz, cal, "resolved"))
        elif spec.from_ == "detected":
            out.append(new_clock(spec, detected, tz, cal, "detected"))
        else:
            out.append(new_clock(spec, level_since, tz, cal, "upgraded" if level_since != detected else "detected"))
    return out


def spec_of(plan: Plan, clock_id: str) -> ClockSpec | None:
    return next((c for c in plan.clocks if c.id == clock_id), None)
