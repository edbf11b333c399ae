"""The incident side's records: frozen values, each with one JSON round trip
(``to_json`` / ``from_json``, ``from_json(x.to_json()) == x``).

The JSON is what Redis stores and what the API shows (DESIGN.md "Incident JSON"; the
API leaves out the internal fields, ``Incident.public_json``). Only the store reads and
writes JSON; the router, the actions, the drafts, the metrics and ``plan explain`` work
on these records. The reporting clock (``Clock``) and the level decision (``Decision``,
``Facts``) live with the plan code that computes them (``monitor.plans``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Mapping

from monitor.core.alert import Alert, rfc3339
from monitor.core.timesource import iso, parse_iso
from monitor.durable import versions
from monitor.durable.events import ClockRef, Headline
from monitor.plans.clocks import Clock
from monitor.plans.levels import Decision
from monitor.plans.model import Plan, stored_plan

Status = Literal["open", "acknowledged", "resolved"]
INTERNAL = ("v", "frozen_plan", "frozen_plan_digest", "group", "timeline_head", "timeline_seq")  # stored, never shown
_VALIDATED: dict[str, Plan] = {}  # frozen plans by digest: each plan version validated once per process


def _opt_iso(dt: datetime | None) -> str | None:
    return iso(dt) if dt is not None else None


class FrozenPlan:
    """The plan frozen into an incident when it opened (docs/habits.md, habit 8), kept as the
    JSON it is stored as, with the digest of that JSON: reading an incident costs no plan
    validation, each plan version is validated once per process (found by its digest),
    and a reload never changes the rules of an incident in flight."""

    __slots__ = ("data", "digest")

    def __init__(self, data: Mapping[str, Any], digest: str | None = None):
        self.data = data
        self.digest = digest or self.digest_of(data)

    @staticmethod
    def digest_of(data: Mapping[str, Any]) -> str:
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @classmethod
    def of(cls, plan: Plan) -> "FrozenPlan":
        frozen = cls(plan.model_dump(mode="json", by_alias=True))
        _VALIDATED.setdefault(frozen.digest, plan)
        return frozen

    @property
    def plan(self) -> Plan:
        plan = _VALIDATED.get(self.digest)
        if plan is None:
            if len(_VALIDATED) >= 256:  # a cache: plan versions come and go with reloads
                _VALIDATED.clear()
            plan = _VALIDATED[self.digest] = stored_plan(self.data)
        return plan

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrozenPlan) and self.data == other.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FrozenPlan({self.data.get('id')!r}, {self.digest[:8]})"


@dataclass(frozen=True, slots=True)
class Classification:
    """What the plan makes of one alert, and the group (open incident) it joins: a
    site's faults caused by its uplink (label ``cause``) fold into the uplink's group."""

    plan: str  # the plan reference the alert's unit uses (a built-in id or a path)
    category: str  # of the group (the cause's category when folded)
    system: str  # of the group (the uplink's system when folded)
    site: str | None
    unit: str | None
    fault: str | None
    unmapped: bool  # no plan category for the fault, or a site the config does not know
    drill: bool
    manual: bool
    group: str
    fingerprint: str  # the alert's (Alertmanager's label-set fingerprint), computed once

    def to_json(self) -> dict[str, Any]:
        return {"plan": self.plan, "category": self.category, "system": self.system, "site": self.site,
                "unit": self.unit, "fault": self.fault, "unmapped": self.unmapped, "drill": self.drill,
                "manual": self.manual, "group": self.group, "fingerprint": self.fingerprint}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Classification":
        return cls(plan=d["plan"], category=d["category"], system=d["system"], site=d.get("site"),
                   unit=d.get("unit"), fault=d.get("fault"), unmapped=bool(d["unmapped"]), drill=bool(d["drill"]),
                   manual=bool(d.get("manual", False)), group=d["group"], fingerprint=d["fingerprint"])


@dataclass(frozen=True, slots=True)
class Ack:
    by: str
    at: datetime
    via: str  # api | link

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "at": iso(self.at), "via": self.via}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Ack":
        return cls(by=d["by"], at=parse_iso(d["at"]), via=d.get("via", "api"))


@dataclass(frozen=True, slots=True)
class Resolution:
    by: str
    at: datetime  # when handling finished, as the person says
    result: str
    recorded_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "at": iso(self.at), "result": self.result, "recorded_at": iso(self.recorded_at)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Resolution":
        return cls(by=d["by"], at=parse_iso(d["at"]), result=d["result"],
                   recorded_at=parse_iso(d.get("recorded_at", d["at"])))


@dataclass(frozen=True, slots=True)
class Report:
    """A report filed (every filing of a recurring clock is one)."""

    clock: str
    seq: int
    by: str
    at: datetime
    note: str | None
    late: bool

    def to_json(self) -> dict[str, Any]:
        return {"clock": self.clock, "seq": self.seq, "by": self.by, "at": iso(self.at), "note": self.note,
                "late": self.late}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Report":
        return cls(clock=d["clock"], seq=int(d.get("seq", 1)), by=d["by"], at=parse_iso(d["at"]),
                   note=d.get("note"), late=bool(d.get("late")))


@dataclass(frozen=True, slots=True)
class LevelChange:
    level: int
    at: datetime
    by: str
    rule: str
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "at": iso(self.at), "by": self.by, "rule": self.rule, "reason": self.reason}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "LevelChange":
        return cls(level=int(d["level"]), at=parse_iso(d["at"]), by=d["by"], rule=d["rule"], reason=d.get("reason"))


def _ms(dt: datetime) -> datetime:
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as kept with its incident (Alertmanager's v2 shape, plus its state)."""

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime  # milliseconds, like Alertmanager
    ends_at: datetime | None
    status: Literal["firing", "resolved"]
    source: str

    @classmethod
    def of(cls, alert: Alert, ended: datetime | None, fingerprint: str | None = None) -> "StoredAlert":
        return cls(fingerprint=fingerprint or alert.fingerprint, labels=dict(alert.labels), annotations=dict(alert.annotations),
                   starts_at=_ms(alert.starts_at), ends_at=_ms(ended) if ended else None,
                   status="resolved" if ended else "firing", source=alert.source)

    def to_json(self) -> dict[str, Any]:
        return {"v": versions.ALERT, "fingerprint": self.fingerprint, "labels": dict(self.labels),
                "annotations": dict(self.annotations),
                "startsAt": rfc3339(self.starts_at), "endsAt": rfc3339(self.ends_at), "status": self.status,
                "source": self.source}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "StoredAlert":
        return cls(fingerprint=d["fingerprint"], labels=dict(d["labels"]), annotations=dict(d.get("annotations") or {}),
                   starts_at=parse_iso(d["startsAt"]), ends_at=parse_iso(d["endsAt"]) if d.get("endsAt") else None,
                   status=d["status"], source=d.get("source", "api"))


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One entry of an incident's hash-chained timeline (see ``store``)."""

    seq: int
    at: datetime
    actor: str
    action: str
    detail: Mapping[str, Any]
    prev: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": iso(self.at), "actor": self.actor, "action": self.action,
                "detail": dict(self.detail), "prev": self.prev, "hash": self.hash}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "TimelineEntry":
        return cls(seq=int(d["seq"]), at=parse_iso(d["at"]), actor=d["actor"], action=d["action"],
                   detail=d.get("detail") or {}, prev=d.get("prev", ""), hash=d.get("hash", ""))


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    group: str  # the key of the open-incident claim this incident holds
    status: Status
    recovered: bool  # every alert has ended (a person still resolves)
    level: int
    level_name: str
    plan: str
    category: str
    system: str
    sites: tuple[str, ...]
    units: tuple[str, ...]
    detected_at: datetime  # the earliest startsAt of its alerts
    opened_at: datetime
    decision: Decision | None  # None only while an incident is being opened
    level_history: tuple[LevelChange, ...]
    level_since: datetime  # detection, or the last upgrade
    clocks: tuple[Clock, ...]
    flags: tuple[str, ...]
    faults: tuple[str, ...]
    drill: bool
    maintenance: bool
    unmapped: bool
    manual: bool
    alerts_firing: int
    alerts_total: int
    acknowledged: Ack | None
    resolved: Resolution | None
    reports: tuple[Report, ...]
    reminder_before: float
    frozen_plan: FrozenPlan
    timeline_seq: int = 0
    timeline_head: str = ""
    updated_at: datetime | None = None
    response_group: Mapping[str, Any] | None = None  # the group that owns the category (Hohhot art. 6)
    regrade_at: datetime | None = None  # when a time-based level rule would raise the level (a durable timer)
    held_until: datetime | None = None  # maintenance: when the window holding its pages ends (a durable timer)
    folded_into: str | None = None  # ended by late folding: the uplink's incident it belongs to

    def clock(self, clock_id: str) -> Clock | None:
        return next((c for c in self.clocks if c.id == clock_id), None)

    def with_clock(self, clock: Clock, was: str | None = None) -> "Incident":
        """The incident with the clock ``was`` (default: ``clock.id``) replaced by ``clock``."""
        key = was or clock.id
        return replace(self, clocks=tuple(clock if c.id == key else c for c in self.clocks))

    @property
    def live(self) -> bool:
        """Open, or with a report pending or overdue: what the metrics watch."""
        return self.status != "resolved" or any(c.owed for c in self.clocks)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": versions.INCIDENT, "id": self.id, "group": self.group, "status": self.status, "recovered": self.recovered,
            "level": self.level, "level_name": self.level_name, "plan": self.plan, "category": self.category,
            "system": self.system, "sites": list(self.sites), "units": list(self.units),
            "detected_at": iso(self.detected_at), "opened_at": iso(self.opened_at),
            "decision": self.decision.to_json() if self.decision else None,
            "level_history": [h.to_json() for h in self.level_history], "level_since": iso(self.level_since),
            "clocks": [c.to_json() for c in self.clocks], "flags": list(self.flags), "faults": list(self.faults),
            "drill": self.drill, "maintenance": self.maintenance, "unmapped": self.unmapped, "manual": self.manual,
            "alerts_firing": self.alerts_firing, "alerts_total": self.alerts_total,
            "acknowledged": self.acknowledged.to_json() if self.acknowledged else None,
            "resolved": self.resolved.to_json() if self.resolved else None,
            "reports": [r.to_json() for r in self.reports], "reminder_before": self.reminder_before,
            "frozen_plan": self.frozen_plan.data, "frozen_plan_digest": self.frozen_plan.digest,
            "timeline_seq": self.timeline_seq,
            "timeline_head": self.timeline_head, "updated_at": _opt_iso(self.updated_at),
            "response_group": dict(self.response_group) if self.response_group else None,
            "regrade_at": _opt_iso(self.regrade_at), "held_until": _opt_iso(self.held_until),
            "folded_into": self.folded_into,
        }

    def headline(self) -> Headline:
        """What an event about this incident carries, from the typed record: the first
        pending report, and the runbook line of its category in its own frozen plan (not
        the plan on disk, which may have changed since or name another plan)."""
        pending = sorted((c for c in self.clocks if c.status == "pending"), key=lambda c: c.due_at)
        category = next((c for c in self.frozen_plan.plan.categories if c.id == self.category), None)
        return Headline(id=self.id, status=self.status, level=self.level, level_name=self.level_name,
                        plan=self.plan, category=self.category, system=self.system, sites=self.sites,
                        units=self.units, faults=self.faults, detected_at=iso(self.detected_at), drill=self.drill,
                        maintenance=self.maintenance, next_clock=clock_ref(pending[0]) if pending else None,
                        runbook={"zh": category.runbook.zh, "en": category.runbook.en} if category else {})

    def public_json(self) -> dict[str, Any]:
        """The incident JSON of DESIGN.md: without the internal fields."""
        return {k: v for k, v in self.to_json().items() if k not in INTERNAL}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Incident":
        return cls(
            id=d["id"], group=d["group"], status=d["status"], recovered=bool(d.get("recovered")),
            level=int(d["level"]), level_name=d["level_name"], plan=d["plan"], category=d["category"],
            system=d["system"], sites=tuple(d["sites"]), units=tuple(d["units"]),
            detected_at=parse_iso(d["detected_at"]), opened_at=parse_iso(d.get("opened_at") or d["detected_at"]),
            decision=Decision.from_json(d["decision"]) if d.get("decision") else None,
            level_history=tuple(LevelChange.from_json(h) for h in d.get("level_history", ())),
            level_since=parse_iso(d.get("level_since") or d["detected_at"]),
            clocks=tuple(Clock.from_json(c) for c in d.get("clocks", ())),
            flags=tuple(d.get("flags", ())), faults=tuple(d.get("faults", ())),
            drill=bool(d.get("drill")), maintenance=bool(d.get("maintenance")), unmapped=bool(d.get("unmapped")),
            manual=bool(d.get("manual")), alerts_firing=int(d.get("alerts_firing", 0)),
            alerts_total=int(d.get("alerts_total", 0)),
            acknowledged=Ack.from_json(d["acknowledged"]) if d.get("acknowledged") else None,
            resolved=Resolution.from_json(d["resolved"]) if d.get("resolved") else None,
            reports=tuple(Report.from_json(r) for r in d.get("reports", ())),
            reminder_before=float(d.get("reminder_before", 300.0)), frozen_plan=FrozenPlan(d["frozen_plan"], d.get("frozen_plan_digest")),
            timeline_seq=int(d.get("timeline_seq", 0)), timeline_head=d.get("timeline_head", ""),
            updated_at=parse_iso(d["updated_at"]) if d.get("updated_at") else None,
            response_group=d.get("response_group"),
            regrade_at=parse_iso(d["regrade_at"]) if d.get("regrade_at") else None,
            held_until=parse_iso(d["held_until"]) if d.get("held_until") else None,
            folded_into=d.get("folded_into"),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False)


def clock_ref(clock: Clock) -> ClockRef:
    """A clock as a page names it."""
    return ClockRef(id=clock.id, title=clock.title or clock.id, title_en=clock.title_en or clock.title or clock.id,
                    due_at=iso(clock.due_at), seq=clock.seq, to=clock.audience.to)


@dataclass
class Change:
    """What one mutation did: recorded on the timeline (``action``, ``actor``,
    ``detail``) and told to paging (``events``), committed with the alerts it stores and
    the clock timers it consumes. Built up while the mutation runs, hence not frozen."""

    action: str
    actor: str
    detail: dict[str, Any] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # IncidentEvent kinds
    alerts: dict[str, StoredAlert] = field(default_factory=dict)  # fingerprint → alert to store
    timers_done: list[str] = field(default_factory=list)  # timers this change consumes
