"""People's actions on an incident: acknowledge, set the level, record harm, file a
report, resolve. Pure functions of the incident, the action's arguments, the config
view and ``now``: each returns the changed incident with its ``Change`` (for the
timeline and paging), None when nothing changes, or raises ``Conflict`` / ``Invalid``
/ ``NotFound``. The router applies them inside the store's transaction.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Iterable

from monitor.core.errors import Conflict, Invalid, NotFound
from monitor.core.timesource import iso, whole
from monitor.incidents.lifecycle import add_clocks, close_clocks, current_facts, relevel, reopen, scheduled, withdraw
from monitor.incidents.records import Ack, Change, Incident, LevelChange, Report, Resolution
from monitor.incidents.view import ConfigView
from monitor.plans.clocks import Filing, next_due
from monitor.plans.levels import Decision

Outcome = tuple[Incident, Change] | None


def _open(inc: Incident, what: str = "incident is resolved") -> None:
    if inc.status == "resolved":
        raise Conflict(what)


def ack(inc: Incident, by: str, via: str, now: datetime) -> Outcome:
    _open(inc)
    if inc.status == "acknowledged":
        return None
    inc = replace(inc, status="acknowledged", acknowledged=Ack(by, whole(now), via))
    return inc, Change("acknowledged", by, {"via": via}, events=["acknowledged"])


def external_update(inc: Incident, by: str, source: str, detail: dict[str, object], acknowledged: bool,
                    now: datetime) -> Outcome:
    """An update made in another system (a Zabbix acknowledgement or comment), recorded
    on the timeline; an acknowledgement there acknowledges an open incident here."""
    _open(inc)
    if acknowledged and inc.status == "open":
        inc = replace(inc, status="acknowledged", acknowledged=Ack(by, whole(now), source))
        return inc, Change("acknowledged", by, {"via": source, **detail}, events=["acknowledged"])
    return inc, Change("external_update", by, {"source": source, **detail})


def set_level(inc: Incident, level: int, by: str, reason: str, flags: Iterable[str], now: datetime,
              view: ConfigView) -> Outcome:
    """A person sets the level (the plan's ``manual_level`` article, e.g. Shenzhen 5.1.2:
    the unit's leader decides), up or down;
    the clocks of a higher level start now."""
    _open(inc)
    now = whole(now)
    plan = inc.frozen_plan.plan
    old = inc.level
    seen = inc.decision.facts if inc.decision else current_facts(inc, now, view)
    inc = replace(inc, flags=tuple(sorted(set(inc.flags) | set(flags))), level=level,
                  level_name=plan.level_name(level), level_since=now if level < old else inc.level_since,
                  decision=Decision(level, "manual", plan.manual_level_source, None, seen, by=by, reason=reason),
                  level_history=(*inc.level_history, LevelChange(level, now, by, "manual", reason)))
    change = Change("level_set", by, {"from": old, "to": level, "reason": reason}, events=["upgraded"])
    inc = withdraw(inc, change)
    if level < old:
        inc = reopen(inc, change)
    inc, added = add_clocks(inc, plan, view)
    change.detail["clocks_added"] = added
    return scheduled(inc, now, view), change


def set_flags(inc: Incident, flags: Iterable[str], by: str, reason: str, now: datetime, view: ConfigView) -> Outcome:
    """A person records harm (casualties, injuries, property loss…); the plan's level
    rules see the flags at once and may raise the level (Xiamen 3(3))."""
    _open(inc)
    added = sorted(set(flags) - set(inc.flags))
    if not added:
        return None
    before = inc.level
    inc = replace(inc, flags=tuple(sorted(set(inc.flags) | set(added))))
    change = Change("flags_set", by, {"flags": added, "reason": reason})
    inc = relevel(inc, now, change, view)
    if inc.level != before:  # the person's record raised it: the history says who and why
        inc = replace(inc, level_history=(*inc.level_history[:-1],
                                          replace(inc.level_history[-1], by=by, reason=reason)))
    return inc, change


def resolve(inc: Incident, by: str, result: str, at: datetime | None, now: datetime, view: ConfigView) -> Outcome:
    _open(inc, "incident is already resolved")
    when = at or now
    if when > now:
        raise Invalid("at: must not be in the future")
    if when < inc.detected_at:
        raise Invalid("at: must not be before the incident was detected")
    when, now = whole(when), whole(now)
    inc = replace(inc, status="resolved", resolved=Resolution(by, when, result, now))
    inc, added = close_clocks(inc, when, view)
    return inc, Change("resolved", by, {"result": result, "at": iso(when), "clocks_added": added},
                       events=["resolved"])


def file_report(inc: Incident, clock_id: str, by: str, at: datetime | None, note: str | None,
                now: datetime) -> Outcome:
    """A report was made for a clock: the clock is met (marked late if after its due
    time); a recurring one falls due again one interval after its due time."""
    clock = inc.clock(clock_id)
    if clock is None:
        raise NotFound(f"no clock {clock_id!r}")
    if clock.status == "withdrawn":
        raise Conflict(f"clock {clock_id!r} was withdrawn: the incident's level no longer asks for it")
    when = at or now
    if when > now:
        raise Invalid("at: must not be in the future")
    if when < inc.detected_at:
        raise Invalid("at: must not be before the incident was detected")
    when = whole(when)
    late = when > clock.due_at
    inc = replace(inc, reports=(*inc.reports, Report(clock_id, clock.seq, by, when, note, late)))
    if clock.every_seconds and inc.status != "resolved":
        due, _ = next_due(clock.due_at, clock.every_seconds, now)
        clock = replace(clock, due_at=due, status="pending", seq=clock.seq + 1, reminded=False,
                        filed=Filing(by, when, note))
    else:
        clock = replace(clock, status="met", filed=Filing(by, when, note, late))
    return inc.with_clock(clock), Change("report_filed", by, {"clock": clock_id, "late": late, "note": note})
