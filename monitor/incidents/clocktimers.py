"""Clock timers firing: a clock's reminder time or due time came.

Every pending clock has a durable due timer and, until its reminder went out, a
reminder timer (``store`` keeps them in step with the clocks). When one fires, ``fire``
decides what it means for the incident: a reminder (once), or the clock overdue. A
recurring clock that is overdue stays on record under ``id#seq`` and its next occurrence
falls due at the next interval that leaves at least half of one to report in: a clock
missed many times (an alert that started days ago, a process down for hours) makes one
overdue, not one per interval. While a maintenance window holds the incident's pages
(Putian art. 3) its clocks' reminders and overdue notices wait for the window's end; a
reminder that would come after its clock's due time is recorded, not sent.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Mapping

from monitor.core.timesource import iso
from monitor.incidents.records import Change, Incident
from monitor.plans.clocks import next_due


def fire(inc: Incident, timer_id: str, payload: Mapping[str, Any], now: datetime) -> tuple[Incident, Change] | None:
    """The change a clock timer makes; None when the work is done already (filed, or
    superseded since the timer was set, or handled by an earlier run of this timer)."""
    clock = inc.clock(payload["clock"])
    if clock is None or clock.status != "pending" or clock.seq != payload["seq"]:
        return None
    detail: dict[str, Any] = {"clock": clock.id, "due_at": iso(clock.due_at)}
    if payload["what"] == "remind" and clock.reminded:
        return None
    if inc.maintenance and inc.held_until is not None and now < inc.held_until:
        # held by a maintenance window (its timers were set before the window was): the
        # write sets them again for the window's end
        return inc, Change("clock_held", "clock", {**detail, "held_until": iso(inc.held_until)},
                           timers_done=[timer_id])
    if payload["what"] == "remind":
        reminded = inc.with_clock(replace(clock, reminded=True))
        if now >= clock.due_at:  # held past its due time: the overdue notice says it all
            return reminded, Change("reminder", "clock", {**detail, "sent": False}, timers_done=[timer_id])
        return reminded, Change("reminder", "clock", detail, events=["reminder"], timers_done=[timer_id])
    missed = replace(clock, status="overdue")
    change = Change("overdue", "clock", detail, events=["overdue"], timers_done=[timer_id])
    if not clock.every_seconds or inc.status == "resolved":
        return inc.with_clock(missed), change
    due, intervals = next_due(clock.due_at, clock.every_seconds, now)
    missed = replace(missed, id=f"{clock.id}#{clock.seq}")  # the missed one stays on record
    following = replace(clock, status="pending", seq=clock.seq + 1, reminded=False, due_at=due)
    detail.update(clock=missed.id, next_due_at=iso(due))
    if intervals > 1:
        detail["intervals_missed"] = intervals
    out = inc.with_clock(missed, was=clock.id)
    return replace(out, clocks=(*out.clocks, following)), change
