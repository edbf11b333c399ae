"""Who is on duty: rotations with a local hand-off time, overrides (swaps, leave), and
layers that stand down on China's non-working days where asked (make-up days count)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.config.paging import Layer, PagingConfig, Person, Roster
from monitor.core.workdays import WorkCalendar


@dataclass(frozen=True)
class Shift:
    layer: str
    person: Person | None
    start: datetime
    end: datetime
    override: bool = False


def _shift_index(layer: Layer, local: datetime, tz: ZoneInfo) -> tuple[int, datetime]:
    hh, mm = (int(x) for x in layer.rotation.handoff.split(":"))
    origin = datetime(layer.rotation.start.year, layer.rotation.start.month, layer.rotation.start.day, hh, mm,
                      tzinfo=tz)
    every = layer.rotation.every
    n = math.floor((local - origin).total_seconds() / every)
    return n, origin + timedelta(seconds=n * every)


class Rosters:
    def __init__(self, paging: PagingConfig, calendar: WorkCalendar | None = None):
        self.people = {p.id: p for p in paging.people}
        self.rosters = {r.id: r for r in paging.rosters}
        self.calendar = calendar or WorkCalendar()

    def shift(self, roster: Roster, layer: Layer, at: datetime) -> Shift:
        tz = ZoneInfo(roster.timezone)
        for o in roster.overrides:
            if o.layer == layer.id and o.from_ <= at < o.to:
                return Shift(layer.id, self.people[o.person], o.from_.astimezone(tz), o.to.astimezone(tz), True)
        local = at.astimezone(tz)
        n, start = _shift_index(layer, local, tz)
        end = start + timedelta(seconds=layer.rotation.every)
        person: Person | None = self.people[layer.members[n % len(layer.members)]]
        if layer.working_days_only and not self.calendar.is_workday(start.date())[0]:
            person = None
        return Shift(layer.id, person, start, end)

    def who(self, roster_id: str, at: datetime) -> list[Shift]:
        roster = self.rosters[roster_id]
        return [self.shift(roster, layer, at) for layer in roster.layers]

    def on_duty(self, roster_id: str, layer_id: str, at: datetime) -> Person | None:
        roster = self.rosters[roster_id]
        layer = next(lay for lay in roster.layers if lay.id == layer_id)
        return self.shift(roster, layer, at).person

    def schedule(self, roster_id: str, start: datetime, days: int) -> list[Shift]:
        """Every shift of every layer from ``start`` for ``days`` days, in order."""
        roster = self.rosters[roster_id]
        end = start + timedelta(days=days)
        out = []
        for layer in roster.layers:
            at = start
            while at < end:
                shift = self.shift(roster, layer, at)
                out.append(shift)
                at = max(shift.end, at + timedelta(minutes=1))
        return sorted(out, key=lambda s: (s.start, s.layer))
