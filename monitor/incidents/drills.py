"""Drill duties (Guizhou part 1, Xiamen part 5, Shenzhen 7.2): each unit owes its plan's
drills, at least one matching drill in every ``every`` calendar periods. A drill falling
due is a clock like any other: it has an id, a title, a due time, a status (``pending``,
``overdue``), an audience and the article it comes from; a drill held meets it and the
next one starts.

A drill is held when a drill incident (``hallmon drill``, or an incident opened with
``drill: true``) reaches a level and faults the duty counts. The router says so on the
incident event stream; this module reads it as its own consumer group and records, per
unit and kind, the latest drill (``hallmon:drills:last``) and since when the duty is
owed (``hallmon:drills:since``, the first time hallmon saw it). Exported as
``hallmon_drill_last_timestamp_seconds{unit,kind}`` and
``hallmon_drill_due_timestamp_seconds{unit,kind}``; the alert rule HallmonDrillOverdue
fires when a due time passes without a drill.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.core.outage import Outage
from monitor.core.supervise import check_cancelled
from monitor.durable.connection import UNAVAILABLE
from monitor.durable.events import EventConsumer, IncidentEvent
from monitor.incidents.records import Incident
from monitor.incidents.store import IncidentStore
from monitor.plans.model import DrillSpec, load_plan

log = structlog.get_logger("hallmon.drills")

LAST = "hallmon:drills:last"  # HASH unit|kind → {"at", "incident"}
SINCE = "hallmon:drills:since"  # HASH unit|kind → unix time the duty was first seen
_RECORD = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cjson.decode(cur)['ts']) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


def period_index(at: datetime, period: str) -> int:
    return at.year * 4 + (at.month - 1) // 3 if period == "quarter" else at.year


def period_end(index: int, period: str, tz: ZoneInfo) -> datetime:
    """The last second of period ``index`` (a quarter or a calendar year), local time."""
    if period == "quarter":
        year, month = (index + 1) // 4, ((index + 1) % 4) * 3 + 1
    else:
        year, month = index + 1, 1
    return datetime(year, month, 1, tzinfo=tz) - timedelta(seconds=1)


def due_at(spec: DrillSpec, last: datetime | None, since: datetime, tz: ZoneInfo) -> datetime:
    """The end of the ``every``-th period after the last drill; never drilled: the
    period hallmon first saw the duty in counts as the first."""
    if last is not None:
        return period_end(period_index(last.astimezone(tz), spec.period) + spec.every, spec.period, tz)
    return period_end(period_index(since.astimezone(tz), spec.period) + spec.every - 1, spec.period, tz)


@dataclass(frozen=True)
class Duty:
    unit: str
    unit_name: str
    spec: DrillSpec
    tz: ZoneInfo

    @property
    def key(self) -> str:
        return f"{self.unit}|{self.spec.id}"


@dataclass(frozen=True)
class DrillClock:
    duty: Duty
    since: datetime
    last_at: datetime | None
    last_incident: str | None
    due: datetime

    def status(self, now: datetime) -> str:
        return "overdue" if now > self.due else "pending"

    def to_json(self, now: datetime, lang: str = "zh") -> dict[str, Any]:
        spec = self.duty.spec
        return {"id": f"drill-{spec.id}", "unit": self.duty.unit, "unit_name": self.duty.unit_name,
                "kind": spec.id, "title": spec.title.get(lang), "title_en": spec.title.en,
                "due_at": self.due.isoformat(timespec="seconds"), "status": self.status(now),
                "audience": {"to": list(spec.audience.to), "cc": list(spec.audience.cc)}, "source": spec.source,
                "note": spec.note, "last_at": self.last_at.astimezone(self.duty.tz).isoformat(timespec="seconds")
                if self.last_at else None, "last_incident": self.last_incident,
                "since": self.since.astimezone(self.duty.tz).isoformat(timespec="seconds")}


class Drills:
    def __init__(self, client: aioredis.Redis, config: Callable[[], Any], store: IncidentStore):
        self.r = client
        self._config = config
        self.store = store
        self._record = client.register_script(_RECORD)
        self.clocks: list[DrillClock] = []  # the latest snapshot, for /metrics

    def duties(self) -> list[Duty]:
        cfg = self._config()
        tz = ZoneInfo(cfg.service.timezone)
        return [Duty(u.id, u.name, spec, tz) for u in cfg.organisation.units
                for spec in (cfg.plans.get(u.plan or cfg.plan) or load_plan(u.plan or cfg.plan)).drills]

    async def record(self, inc: Incident) -> list[str]:
        """Record a drill incident against every duty it meets; returns the duties met."""
        if not inc.drill:
            return []
        at = inc.detected_at
        met = []
        for duty in self.duties():
            if duty.unit in inc.units and duty.spec.counts(list(inc.faults), inc.level):
                value = json.dumps({"at": at.isoformat(), "ts": at.timestamp(), "incident": inc.id})
                if await self._record(keys=[LAST], args=[duty.key, at.timestamp(), value]):
                    log.info("drill_recorded", unit=duty.unit, kind=duty.spec.id, incident=inc.id)
                met.append(duty.key)
        return met

    async def snapshot(self, now: datetime | None = None) -> list[DrillClock]:
        """Every unit's drill clocks now (and note since when new duties are owed)."""
        now = now or datetime.now(timezone.utc)
        duties = self.duties()
        if not duties:
            self.clocks = []
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for d in duties:
                pipe.hsetnx(SINCE, d.key, f"{now.timestamp():.3f}")
            pipe.hmget(SINCE, [d.key for d in duties])
            pipe.hmget(LAST, [d.key for d in duties])
            *_, since, last = await pipe.execute()
        out = []
        for d, s, raw in zip(duties, since, last):
            first = datetime.fromtimestamp(float(s), timezone.utc)
            held = json.loads(raw) if raw else None
            at = datetime.fromisoformat(held["at"]) if held else None
            out.append(DrillClock(d, first, at, held["incident"] if held else None, due_at(d.spec, at, first, d.tz)))
        self.clocks = out
        return out

    async def consume(self) -> None:
        """Read incident events as the ``drills`` group: a drill opened or upgraded is
        recorded (from the stored incident, so a slimmer event is enough)."""
        consumer = EventConsumer(self.r, "drills", f"{socket.gethostname()}-{os.getpid()}")
        grouped, redis = False, Outage("drill_events", log)
        while True:
            check_cancelled()
            try:  # Redis away (at start or later) is waited out here, said once, not a crash
                if not grouped:
                    await consumer.ensure_group()
                    grouped = True
                for entry_id, event in await consumer.read(block_ms=1000):
                    if isinstance(event, IncidentEvent) and event.kind in ("opened", "upgraded") \
                            and (event.incident.drill or event.id.startswith("DRILL-")):
                        doc = await self.store.get(event.id)
                        if doc is not None:
                            await self.record(doc)
                    await consumer.ack(entry_id)
                redis.ok()
            except UNAVAILABLE as err:
                redis.failing(err)
                await asyncio.sleep(1.0)


class DrillCollector(Collector):
    def __init__(self, drills: Drills) -> None:
        self.drills = drills

    def collect(self):
        last = GaugeMetricFamily("hallmon_drill_last_timestamp_seconds", "When each unit last held each kind of drill.",
                                 labels=["unit", "kind"])
        due = GaugeMetricFamily("hallmon_drill_due_timestamp_seconds",
                                "When each unit's next drill of each kind falls due.", labels=["unit", "kind"])
        for c in self.drills.clocks:
            if c.last_at is not None:
                last.add_metric([c.duty.unit, c.duty.spec.id], c.last_at.timestamp())
            due.add_metric([c.duty.unit, c.duty.spec.id], c.due.timestamp())
        yield from (last, due)


async def refresh_forever(drills: Drills, every: float = 5.0) -> None:
    redis = Outage("drill_metrics", log)
    while True:
        try:
            await drills.snapshot()
            redis.ok()
        except UNAVAILABLE as err:
            redis.failing(err)
        await asyncio.sleep(every)
