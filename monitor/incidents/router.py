"""Router: alerts in, incidents out, at the level the plan prescribes; people's actions
and clock timers applied to incidents. The I/O around pure parts:

* ``classify``: alert + config view → classification and group (uplink folding);
* ``lifecycle``: open an incident, merge alerts into it, relevel it;
* ``actions``: acknowledge, set the level, harm flags, file a report, resolve;
* ``clocktimers``: a clock's reminder or due time came.

Each change runs inside the store's transaction (``IncidentStore.update``), so a
concurrent writer (another request, another replica) makes it apply again on fresh data.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

import structlog

from monitor.config.model import Config
from monitor.core.alert import Alert
from monitor.core.timesource import SYSTEM_TIME, TimeSource
from monitor.durable.timers import Timers
from monitor.incidents import actions, clocktimers, lifecycle
from monitor.incidents.classify import group
from monitor.incidents.errors import Conflict, Invalid, NotFound
from monitor.incidents.records import Change, Classification, Incident, StoredAlert
from monitor.incidents.store import IncidentStore, Mutation
from monitor.incidents.view import ConfigView
from monitor.plans.model import FLAGS

__all__ = ["FLAGS", "Router"]

log = structlog.get_logger("hallmon.router")


class Router:
    def __init__(self, store: IncidentStore, config: Callable[[], Config], time: TimeSource = SYSTEM_TIME):
        self.store = store
        self._config = config
        self.time = time
        self._view: tuple[Config, ConfigView] | None = None
        # one writer per group in this process: concurrent requests for one outage queue
        # here instead of colliding on the incident's WATCH (replicas still use WATCH)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def view(self) -> ConfigView:
        """The config view of the running config, rebuilt when a reload replaced it."""
        cfg = self._config()
        if self._view is None or self._view[0] is not cfg:
            self._view = (cfg, ConfigView.from_config(cfg))
        return self._view[1]

    # ── ingest ───────────────────────────────────────────────────────────────────
    async def ingest(self, alerts: Iterable[Alert], actor: str = "router") -> list[str]:
        """Store every alert in an incident; returns the incident ids touched."""
        touched = []
        for key, items in group(alerts, self.view()).items():
            async with self._locks[key]:
                touched.append(await self._ingest_group(key, items, actor))
        return [t for t in touched if t]

    async def _ingest_group(self, key: str, items: list[tuple[Alert, Classification]], actor: str) -> str | None:
        now, view = self.time.now(), self.view()
        for _ in range(5):
            incident_id = await self.store.open_for(key)
            if incident_id is None:
                if not lifecycle.firing(items, now):
                    log.info("resolved_alerts_without_incident", group=key, count=len(items))
                    return None
                new_id = await self.store.next_id(now.astimezone(view.timezone), items[0][1].drill)
                inc, change = lifecycle.open_incident(new_id, key, items, now, view, actor)
                if await self.store.create(inc, change):
                    log.warning("incident_opened", incident=inc.id, level=inc.level, category=inc.category,
                                sites=list(inc.sites), rule=inc.decision.rule if inc.decision else None)
                    return inc.id
                continue  # another writer opened the group's incident first: join it

            def merge(inc: Incident, stored: Mapping[str, StoredAlert]) -> tuple[Incident, Change] | None:
                change = Change("alerts", actor)
                merged = lifecycle.merge(inc, stored, items, now, change, view)
                return None if merged is None else (lifecycle.relevel(merged, now, change, view), change)

            try:
                inc, _ = await self.store.update(incident_id, merge, [c.fingerprint for _, c in items])
            except NotFound:
                if await self.store.release_dangling(key, incident_id):
                    log.warning("dangling_claim_repaired", group=key, incident=incident_id)
                continue
            if inc.status != "resolved":
                return inc.id
        raise Conflict(f"could not place alerts of group {key}")

    # ── people's actions ─────────────────────────────────────────────────────────
    async def _apply(self, incident_id: str, mutate: Callable[[Incident], actions.Outcome]) -> Incident:
        return (await self.store.update(incident_id, lambda inc, _: mutate(inc)))[0]

    async def ack(self, incident_id: str, by: str, via: str = "api") -> Incident:
        return await self._apply(incident_id, lambda inc: actions.ack(inc, by, via, self.time.now()))

    async def set_level(self, incident_id: str, level: int, by: str, reason: str,
                        flags: Iterable[str] = ()) -> Incident:
        flags = tuple(flags)
        return await self._apply(incident_id, lambda inc: actions.set_level(inc, level, by, reason, flags,
                                                                            self.time.now(), self.view()))

    async def set_flags(self, incident_id: str, flags: Iterable[str], by: str, reason: str) -> Incident:
        flags = tuple(flags)
        return await self._apply(incident_id, lambda inc: actions.set_flags(inc, flags, by, reason,
                                                                            self.time.now(), self.view()))

    async def resolve(self, incident_id: str, by: str, result: str, at: datetime | None = None) -> Incident:
        return await self._apply(incident_id, lambda inc: actions.resolve(inc, by, result, at, self.time.now(),
                                                                          self.view()))

    async def file_report(self, incident_id: str, clock_id: str, by: str, at: datetime | None,
                          note: str | None) -> Incident:
        return await self._apply(incident_id, lambda inc: actions.file_report(inc, clock_id, by, at, note,
                                                                              self.time.now()))

    async def relevel_now(self, incident_id: str, by: str) -> Incident:
        def mutate(inc: Incident) -> actions.Outcome:
            change = Change("relevel", by)
            after = lifecycle.relevel(inc, self.time.now(), change, self.view())
            return (after, change) if after.level != inc.level else None
        return await self._apply(incident_id, mutate)

    async def open_manual(self, category: str, site: str, by: str, summary: str, flags: Iterable[str],
                          drill: bool = False, level: int | None = None) -> Incident:
        """A person reports what no probe sees (fire, epidemic, public order…)."""
        info = self.view().sites.get(site)
        if info is None:
            raise Invalid(f"site: no site {site!r}")
        labels = {"alertname": "ManualIncident", "fault": f"manual.{category}", "site": site, "unit": info.unit,
                  "system": "manual", "reported_by": by}
        if drill:
            labels["drill"] = "true"
        alert = Alert(labels=labels, annotations={"summary": summary}, starts_at=self.time.now(), source="manual")
        [incident_id] = await self.ingest([alert], actor=by)
        inc = await self.store.require(incident_id)
        flags = tuple(flags)
        if flags or level:
            await self.set_level(incident_id, min(level or 3, inc.level), by, f"manual report: {summary}", flags)
            await self.relevel_now(incident_id, by)
        return await self.store.require(incident_id)

    # ── clocks firing ────────────────────────────────────────────────────────────
    async def clock_timer(self, timer_id: str, payload: dict[str, Any], timers: Timers) -> None:
        """A clock's reminder or due time came: tell paging, mark overdue. The timer is
        removed in the same transaction as that change, so it fires once."""
        fire: Mutation = lambda inc, _: clocktimers.fire(inc, timer_id, payload, self.time.now())  # noqa: E731
        try:
            _, change = await self.store.update(payload["incident"], fire)
        except NotFound:
            change = None
        if change is None:
            await timers.done(timer_id)
