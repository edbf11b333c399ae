"""Lifecycle: open an incident from a group of alerts, merge later alerts into it,
relevel it (also when a time-based rule comes true: ``regrade_at``, a durable timer). Pure functions of records, the config view and ``now``; the router does
the I/O around them and ``plan explain`` calls the same ones.

``detected_at`` is the earliest ``startsAt`` of the incident's firing alerts, even when
the earlier alert arrives later; the clocks anchored at detection move with it. The
router raises a level by itself but never lowers it; the clocks a new level demands
start at the upgrade (or at detection, where the plan says so), and the pending clocks
the new level no longer asks for are withdrawn (kept, marked, the reason on the
timeline). An upgrade after an acknowledgement opens the incident again: the new level's
people are paged and acknowledge for themselves. The plan is frozen into the incident
when it opens.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

from monitor.core.alert import Alert
from monitor.core.timesource import fixed, iso, whole
from monitor.incidents.records import Change, Classification, FrozenPlan, Incident, LevelChange, Resolution, StoredAlert
from monitor.incidents.view import ConfigView
from monitor.plans.clocks import clocks_for, due_time, spec_of
from monitor.plans.levels import Decision, Facts, decide, facts
from monitor.plans.model import Plan

Items = Sequence[tuple[Alert, Classification]]


def firing(items: Items, now: datetime) -> list[tuple[Alert, Classification]]:
    return [(a, c) for a, c in items if a.resolved_at(now) is None]


def incident_tz(inc: Incident, view: ConfigView) -> ZoneInfo:
    """The zone of the incident's (first) site: the zone of its clocks and drafts."""
    return view.tz(inc.sites[0] if inc.sites else None)


def open_incident(incident_id: str, group: str, items: Items, now: datetime, view: ConfigView,
                  actor: str = "router") -> tuple[Incident, Change]:
    """A new incident for a group with at least one firing alert (see ``firing``)."""
    now = whole(now)
    live = firing(items, now)
    if not live:
        raise ValueError("an incident opens only on a firing alert")
    c = live[0][1]
    plan = view.plan_of(c.plan)
    detected = whole(min(a.starts_at for a, _ in live))
    inc = Incident(
        id=incident_id, group=group, status="open", recovered=False, level=3, level_name=plan.level_name(3),
        plan=plan.id, category=c.category, system=c.system, sites=(), units=(), detected_at=detected,
        opened_at=now, decision=None, level_history=(), level_since=detected, clocks=(), flags=(), faults=(),
        drill=c.drill, maintenance=False, unmapped=False, manual=c.manual, alerts_firing=0, alerts_total=0,
        acknowledged=None, resolved=None, reports=(), reminder_before=plan.reminder_before,
        frozen_plan=FrozenPlan.of(plan),
        response_group=owner.model_dump(mode="json") if (owner := plan.group_of(c.category)) else None)
    change = Change("opened", actor, {"alerts": len(live)}, events=["opened"])
    inc = merge(inc, {}, items, now, change, view) or inc
    return relevel(inc, now, change, view, opening=True), change


def merge(inc: Incident, stored: Mapping[str, StoredAlert], items: Items, now: datetime, change: Change,
          view: ConfigView) -> Incident | None:
    """Fold alerts into the incident; None when nothing new was learnt (a duplicate from
    another replica or the other ingest path records nothing)."""
    sites, units, faults = set(inc.sites), set(inc.units), set(inc.faults)
    firing_n, total, unmapped, detected = inc.alerts_firing, inc.alerts_total, inc.unmapped, inc.detected_at
    changed = False
    for alert, c in items:
        fp = c.fingerprint
        old = change.alerts.get(fp) or stored.get(fp)  # this batch's news of it first: it is the newer
        new = StoredAlert.of(alert, alert.resolved_at(now), fp)
        if old and old.status == new.status and old.starts_at <= new.starts_at:
            continue
        if old and old.status == "firing" and new.status == "firing":
            new = replace(new, starts_at=min(old.starts_at, new.starts_at))
        change.alerts[fp] = new
        changed = True
        total += 0 if old else 1
        firing_n += (new.status == "firing") - (old is not None and old.status == "firing")
        if new.status == "firing":
            sites.update(v for v in (c.site,) if v)
            units.update(v for v in (c.unit,) if v)
            faults.update(v for v in (c.fault,) if v)
            unmapped |= c.unmapped
            if alert.starts_at < detected:
                detected = whole(alert.starts_at)
    if not changed:
        return None
    out = replace(inc, sites=tuple(sorted(sites)), units=tuple(sorted(units)), faults=tuple(sorted(faults)),
                  alerts_firing=firing_n, alerts_total=total, unmapped=unmapped, detected_at=detected)
    if detected != inc.detected_at:
        out = reanchor(out, inc.detected_at, change, view)
    recovered = firing_n == 0
    if recovered != out.recovered:
        out = replace(out, recovered=recovered)
        change.detail["recovered"] = recovered
        if recovered:
            change.events.append("recovered")
    change.detail.setdefault("alerts", len(change.alerts))
    return hold(out, now, change, view)


def hold(inc: Incident, now: datetime, change: Change, view: ConfigView) -> Incident:
    """Maintenance judged per alert and per moment (Putian art. 3): the incident's pages
    are held while every site it has reached is inside a window. When a site outside
    joins, or the window ends (``held_until``, a durable timer), paging hears ``unheld``
    and resumes."""
    held = view.in_maintenance(inc.sites, now)
    until = view.maintenance_until(inc.sites, now)
    if (held, until) == (inc.maintenance, inc.held_until):
        return inc
    if inc.maintenance and not held:
        change.events.append("unheld")
        change.detail["maintenance"] = {"held": False, "sites": list(inc.sites)}
    elif held and not inc.maintenance:
        change.detail["maintenance"] = {"held": True, "until": iso(until) if until else None}
    return replace(inc, maintenance=held, held_until=until)


def unhold(inc: Incident, timer_id: str | None, now: datetime, view: ConfigView) -> tuple[Incident, Change] | None:
    """The window holding the incident's pages ended (or was ended, or announced): judge
    again. None when nothing changes."""
    change = Change("maintenance", "router", timers_done=[timer_id] if timer_id else [])
    if inc.status == "resolved":
        return None
    after = hold(inc, now, change, view)
    return None if after == inc else (after, change)


def reanchor(inc: Incident, old: datetime, change: Change, view: ConfigView) -> Incident:
    """An alert that started earlier arrived later: detection moves back, and with it
    the level's start (if never upgraded) and every pending clock anchored there."""
    if inc.level_since == old:
        inc = replace(inc, level_since=inc.detected_at)
    if not inc.clocks:
        return inc
    plan, tz = inc.frozen_plan.plan, incident_tz(inc, view)
    moved = []
    clocks = []
    for clock in inc.clocks:
        spec = spec_of(plan, clock.id)
        if clock.status == "pending" and clock.anchor == "detected" and spec is not None and clock.seq == 1:
            due, estimated = due_time(spec, inc.detected_at, tz, view.calendar)
            clock = replace(clock, due_at=due, estimated=estimated, anchored_at=fixed(inc.detected_at.astimezone(tz)))
            moved.append(clock.id)
        clocks.append(clock)
    if moved:
        change.detail["clocks_reanchored"] = {"detected_at": iso(inc.detected_at), "clocks": moved}
    return replace(inc, clocks=tuple(clocks))


def relevel(inc: Incident, now: datetime, change: Change, view: ConfigView, opening: bool = False) -> Incident:
    """Recompute the level from scope, duration and flags; raise only (a person may
    lower it). Add the clocks the level demands, withdraw those it no longer does, and
    note when a time-based rule would raise it next."""
    now = whole(now)
    plan = inc.frozen_plan.plan
    decision = decide(plan, current_facts(inc, now, view))
    if inc.unmapped and opening:
        decision = Decision(3, "unmapped", "hallmon", "no site or plan rule matched: lowest level", decision.facts)
    if not opening and decision.level >= inc.level:
        return scheduled(inc, now, view)
    level_since = inc.level_since
    if not opening:
        change.events.append("upgraded")
        change.detail["upgraded"] = {"from": inc.level, "to": decision.level, "rule": decision.rule,
                                     "source": decision.source}
        level_since = now
    inc = replace(inc, level=decision.level, level_name=plan.level_name(decision.level), decision=decision,
                  level_since=level_since,
                  level_history=(*inc.level_history,
                                 LevelChange(decision.level, now, "router", decision.rule, decision.source)))
    inc = reopen(withdraw(inc, change), change)
    return scheduled(add_clocks(inc, plan, view)[0], now, view)


def withdraw(inc: Incident, change: Change) -> Incident:
    """The pending clocks the incident's level no longer asks for are withdrawn: kept
    on record, marked, the reason on the timeline (never silently deleted)."""
    plan = inc.frozen_plan.plan
    gone = [c.id for c in inc.clocks if c.status == "pending" and c.anchor != "resolved"
            and (spec := spec_of(plan, c.id.split("#")[0])) is not None
            and not spec.applies(inc.level, inc.category, inc.drill)]
    if not gone:
        return inc
    change.detail["clocks_withdrawn"] = {"clocks": gone, "reason": f"level {inc.level_name} does not ask for them"}
    return replace(inc, clocks=tuple(replace(c, status="withdrawn") if c.id in gone else c for c in inc.clocks))


def reopen(inc: Incident, change: Change) -> Incident:
    """An upgrade after an acknowledgement: the new level's policy pages whoever it
    names, and they acknowledge for themselves."""
    if inc.status != "acknowledged" or "upgraded" not in change.events:
        return inc
    change.detail["reopened"] = {"acknowledged_by": inc.acknowledged.by if inc.acknowledged else None}
    return replace(inc, status="open")


def scheduled(inc: Incident, now: datetime, view: ConfigView) -> Incident:
    """The incident with ``regrade_at``: the moment a rule on duration (Guizhou part 3:
    lasting 2 h) would raise its level, given everything else as it is now; None when
    none would, or the incident is over or all its alerts have ended."""
    at = None
    if inc.status != "resolved" and not inc.recovered:
        plan = inc.frozen_plan.plan
        seen = current_facts(inc, now, view)
        for lasting in sorted({r.when.lasting_at_least for r in plan.level_rules
                               if r.when.lasting_at_least and r.level < inc.level}):
            if lasting > seen.lasting_seconds and decide(plan, replace(seen, lasting_seconds=lasting)).level < inc.level:
                at = inc.detected_at + timedelta(seconds=lasting)
                break
    return inc if at == inc.regrade_at else replace(inc, regrade_at=at)


def regrade(inc: Incident, timer_id: str, now: datetime, view: ConfigView) -> tuple[Incident, Change] | None:
    """The regrade timer came: the incident has lasted long enough for a rule on
    duration; the decision goes on the timeline, the new level's clocks start now and
    paging hears of the upgrade. None when nothing rises (resolved, recovered, raised
    already)."""
    change = Change("regraded", "clock", {"lasting_seconds": round((whole(now) - inc.detected_at).total_seconds())},
                    timers_done=[timer_id])
    after = relevel(inc, now, change, view) if inc.status != "resolved" else inc
    if after.level == inc.level:
        return None
    change.detail["decision"] = after.decision.to_json() if after.decision else None
    return after, change


def current_facts(inc: Incident, now: datetime, view: ConfigView) -> Facts:
    return facts(view.org, inc.category, inc.units, inc.sites, (now - inc.detected_at).total_seconds(), inc.flags)


def add_clocks(inc: Incident, plan: Plan, view: ConfigView, resolved: datetime | None = None) -> tuple[Incident, list[str]]:
    """The incident with the clocks its level demands and it does not have yet. A clock
    withdrawn earlier that the level asks for again (a person lowered the level back) is
    owed again, anchored anew; it keeps its occurrence count, and the timeline keeps the
    withdrawal."""
    gone = {c.id: c for c in inc.clocks if c.status == "withdrawn" and "#" not in c.id}
    new = clocks_for(plan.clocks, inc.level, inc.category, {c.id for c in inc.clocks if c.id not in gone},
                     inc.detected_at, inc.level_since, incident_tz(inc, view), view.calendar, resolved, drill=inc.drill)
    new = [replace(c, seq=gone[c.id].seq) if c.id in gone else c for c in new]
    fresh = {c.id for c in new}
    kept = tuple(c for c in inc.clocks if c.id not in fresh)
    return replace(inc, clocks=(*kept, *new)), [c.id for c in new]


def close_clocks(inc: Incident, resolved: datetime, view: ConfigView) -> tuple[Incident, list[str]]:
    """Handling finished at ``resolved``: recurring reports end with it (and do not come
    back), and the reports due after the end (``from: resolved``) start."""
    had = {c.id for c in inc.clocks}
    new = clocks_for(inc.frozen_plan.plan.clocks, inc.level, inc.category, had, inc.detected_at, inc.level_since,
                     incident_tz(inc, view), view.calendar, resolved, drill=inc.drill)
    kept = tuple(c for c in inc.clocks if not (c.every_seconds and c.status == "pending"))
    return replace(inc, clocks=(*kept, *new)), [c.id for c in new]


def fold(inc: Incident, into: str, now: datetime) -> tuple[Incident, Change] | None:
    """A device fault seen a moment before its site's uplink fault: the uplink explains
    it, so it joins the uplink's incident as if it had come after it. This incident
    ends here: folded, its pending clocks withdrawn, both timelines saying so."""
    if inc.status == "resolved":
        return None
    now = whole(now)
    change = Change("folded", "router", {"into": into}, events=["resolved"])
    pending = [c.id for c in inc.clocks if c.status == "pending"]
    if pending:
        change.detail["clocks_withdrawn"] = {"clocks": pending, "reason": f"folded into {into}"}
    clocks = tuple(replace(c, status="withdrawn") if c.id in pending else c for c in inc.clocks)
    result = f"并入 {into}（站点上联中断所致） / folded into {into} (the site's uplink is down)"
    return replace(inc, status="resolved", clocks=clocks, regrade_at=None, held_until=None, folded_into=into,
                   resolved=Resolution("router", now, result, now)), change
