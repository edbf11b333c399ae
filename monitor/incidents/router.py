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
import contextlib
from dataclasses import replace
from datetime import datetime
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, Sequence

import structlog

from monitor.config.model import Config
from monitor.core.alert import Alert
from monitor.core.errors import Invalid, NotFound, StoreBusy
from monitor.core.timesource import SYSTEM_TIME, TimeSource
from monitor.durable.timers import Timers
from monitor.incidents import actions, clocktimers, expiry, lifecycle, maintenance
from monitor.incidents.classify import classify, group
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
        # one writer per group in this process: concurrent batches for one outage queue
        # here instead of colliding on the incident's WATCH (replicas still use WATCH);
        # a group's lock lives only while someone holds or waits for it
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self.windows = maintenance.Windows(store.r, config)
        self._announced: tuple[float, tuple[maintenance.Window, ...]] = (float("-inf"), ())

    def view(self) -> ConfigView:
        """The config view of the running config, rebuilt when a reload replaced it."""
        cfg = self._config()
        if self._view is None or self._view[0] is not cfg:
            self._view = (cfg, ConfigView.from_config(cfg))
        return self._view[1]

    async def live_view(self, fresh: bool = False) -> ConfigView:
        """The config view with the maintenance windows announced at run time (read from
        Redis at most once a second, or now when ``fresh``)."""
        at, windows = self._announced
        now = self.time.now().timestamp()
        if fresh or now - at > 1.0:
            windows = tuple(await self.windows.stored())
            self._announced = (now, windows)
        return replace(self.view(), announced=windows)

    async def rejudge_maintenance(self) -> list[str]:
        """A window was announced or ended: judge every open incident again now."""
        view = await self.live_view(fresh=True)
        changed = []
        for inc in await self.store.watched():
            if inc.status == "resolved":
                continue
            _, change = await self.store.update(inc.id, lambda i, _: lifecycle.unhold(i, None, self.time.now(), view))
            if change is not None:
                changed.append(inc.id)
        return changed

    # ── ingest ───────────────────────────────────────────────────────────────────
    async def ingest(self, alerts: Iterable[Alert], actor: str = "router") -> list[str]:
        """Store every alert in an incident; returns the incident ids touched."""
        return (await self.place([(actor, list(alerts))]))[0]

    async def place(self, batches: Sequence[tuple[str, Sequence[Alert]]],
                    cap: int | None = None) -> list[list[str]]:
        """Store the alerts of many requests (actor, alerts) at once, one write per
        incident for the lot; returns, per request, the incidents its alerts joined.
        With a ``cap``, one request opens at most that many new incidents: the alerts of
        its further new groups go to one incident of category ``storm`` (see ``_capped``)."""
        view = await self.live_view()
        groups: dict[tuple[str, str], list[tuple[Alert, Classification]]] = {}
        keys_of: list[set[tuple[str, str]]] = []
        storms: dict[tuple[str, str], list[str]] = {}
        for actor, alerts in batches:
            keys: set[tuple[str, str]] = set()
            grouped = group(alerts, view)
            if cap is not None and len(grouped) > cap:
                grouped, held = await self._capped(grouped, cap)
                for key, systems in held.items():
                    storms.setdefault((actor, key), []).extend(systems)
            for key, items in grouped.items():
                groups.setdefault((actor, key), []).extend(items)
                keys.add((actor, key))
            keys_of.append(keys)
            await asyncio.sleep(0)  # a request arriving meanwhile is answered between bodies
        placed: dict[tuple[str, str], str | None] = {}
        for (actor, key), items in groups.items():
            async with self._group_lock(key):
                placed[(actor, key)] = incident_id = await self._ingest_group(key, items, actor, view)
            if incident_id and (actor, key) in storms:
                await self._note_storm(incident_id, actor, cap or 0, storms[(actor, key)])
        ending = expiry.ending((a for items in groups.values() for a, _ in items), self.time.now())
        if ending:  # alerts that say when they end (Prometheus's way): each one's timer, moved
            async with self.store.r.pipeline(transaction=True) as pipe:
                await expiry.schedule(self.store.timers, ending, pipe)
                await pipe.execute()
        return [sorted({i for k in keys if (i := placed[k])}) for keys in keys_of]

    async def _capped(self, grouped: dict[str, list[tuple[Alert, Classification]]], cap: int) -> tuple[
            dict[str, list[tuple[Alert, Classification]]], dict[str, list[str]]]:
        """Past ``cap`` groups with no open incident (in arrival order), the alerts of the
        rest join the ``storm`` incident (one per drill flag), which lists them; returns
        the groups to place and, per storm group, the groups it holds."""
        keys = list(grouped)
        open_now = await self.store.open_many(keys)
        new = [k for k, inc in zip(keys, open_now) if inc is None]
        if len(new) <= cap:
            return grouped, {}
        out = {k: v for k, v in grouped.items() if k not in set(new[cap:])}
        held: dict[str, list[str]] = {}
        for key in new[cap:]:
            for alert, c in grouped[key]:
                storm = f"{'drill|' if c.drill else ''}storm|storm"
                out.setdefault(storm, []).append((alert, replace(c, category="storm", system="storm", group=storm)))
                if not held.get(storm) or held[storm][-1] != key:
                    held.setdefault(storm, []).append(key)
        log.warning("request_capped", cap=cap, new_groups=len(new), held=len(new) - cap)
        return out, held

    async def _note_storm(self, incident_id: str, actor: str, cap: int, held: list[str]) -> None:
        def note(inc: Incident, _: Mapping[str, StoredAlert]) -> tuple[Incident, Change]:
            return inc, Change("storm_held", actor, {"cap": cap, "groups": len(held), "held": held[:100]})
        await self.store.update(incident_id, note)

    @contextlib.asynccontextmanager
    async def _group_lock(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def _ingest_group(self, key: str, items: list[tuple[Alert, Classification]], actor: str,
                            view: ConfigView) -> str | None:
        now = self.time.now()
        folded = await self._folded_target(items)
        for _ in range(5):
            incident_id = await self.store.open_for(key) or folded
            if incident_id is None:
                if not lifecycle.firing(items, now):
                    log.info("resolved_alerts_without_incident", group=key, count=len(items))
                    return None
                new_id = await self.store.next_id(now.astimezone(view.timezone), items[0][1].drill)
                inc, change = lifecycle.open_incident(new_id, key, items, now, view, actor)
                if await self.store.create(inc, change):
                    log.warning("incident_opened", incident=inc.id, level=inc.level, category=inc.category,
                                sites=list(inc.sites), rule=inc.decision.rule if inc.decision else None)
                    await self._fold_under(inc, items, view)
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
                await self._fold_under(inc, items, view)
                return inc.id
            folded = None  # the incident it was folded into has ended: place the alerts as they are
        raise StoreBusy(f"could not place alerts of group {key} among concurrent writers; retry")

    # ── late folding under an uplink ─────────────────────────────────────────────
    async def _folded_target(self, items: list[tuple[Alert, Classification]]) -> str | None:
        """News of alerts folded under an uplink (their resolution, a repeat) goes where they went."""
        into = set(await self.store.folded_into(a.fingerprint for a, _ in items))
        return into.pop() if len(into) == 1 and None not in into else None

    async def _fold_under(self, uplink: Incident, items: list[tuple[Alert, Classification]], view: ConfigView) -> None:
        """An uplink fault arrived: the device faults at its site first seen within
        ``service.fold_window`` of it (they carry no ``cause``: they fired a moment
        before it) fold into its incident, as if they had come after it."""
        now = self.time.now()
        for alert, c in items:
            if not view.is_uplink(alert.labels) or alert.resolved_at(now):
                continue  # (the common case: no uplink among the alerts, nothing read)
            for other_id in await self.store.open_ids():
                other = await self.store.get(other_id) if other_id != uplink.id else None
                if (other is None or other.status == "resolved" or other.sites != (c.site,)
                        or other.drill != uplink.drill
                        or abs((other.detected_at - alert.starts_at).total_seconds()) > view.fold_window):
                    continue
                await self._fold(other, uplink.id, view)

    async def _fold(self, other: Incident, into: str, view: ConfigView) -> None:
        now = self.time.now()
        moved = [Alert(labels=a.labels, starts_at=a.starts_at, annotations=a.annotations, source=a.source)
                 for a in await self.store.alerts(other.id) if a.status == "firing"]
        items = [(a, classify(a, view)) for a in moved]

        def take(inc: Incident, stored: Mapping[str, StoredAlert]) -> tuple[Incident, Change] | None:
            change = Change("folded_in", "router", {"from": other.id, "alerts": len(items)})
            merged = lifecycle.merge(inc, stored, items, now, change, view)
            return None if merged is None else (lifecycle.relevel(merged, now, change, view), change)

        await self.store.update(into, take, [a.fingerprint for a in moved])
        await self.store.note_folded([a.fingerprint for a in moved], into)
        await self.store.update(other.id, lambda inc, _: lifecycle.fold(inc, into, now))
        log.info("folded_under_uplink", incident=other.id, into=into, alerts=len(moved))

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
        """A clock's reminder or due time came: tell paging, mark overdue; or the moment
        a rule on duration comes true: re-grade. The timer is removed in the same
        transaction as that change, so it fires once."""
        if payload.get("what") == expiry.WHAT:  # an alert's endsAt came
            await self._expire(timer_id, payload, timers)
            return
        if payload.get("what") == "regrade":  # a rule on duration comes true
            fire: Mutation = lambda inc, _: lifecycle.regrade(inc, timer_id, self.time.now(), self.view())  # noqa: E731
        elif payload.get("what") == "unhold":  # the maintenance window holding its pages ends
            view = await self.live_view(fresh=True)
            fire = lambda inc, _: lifecycle.unhold(inc, timer_id, self.time.now(), view)  # noqa: E731
        else:
            fire = lambda inc, _: clocktimers.fire(inc, timer_id, payload, self.time.now())  # noqa: E731
        try:
            _, change = await self.store.update(payload["incident"], fire)
        except NotFound:
            change = None
        if change is None:
            await timers.done(timer_id)

    async def _expire(self, timer_id: str, payload: dict[str, Any], timers: Timers) -> None:
        """An alert that said when it ends has not been sent again since: it ends then
        (incidents/expiry.py). A resend that moved its timer meanwhile leaves it be."""
        current = await timers.payload(timer_id)
        if current is not None and float(current.get("ends_at", 0)) > float(payload["ends_at"]):
            return
        await self.ingest([expiry.resolution(payload)], actor="expiry")
        await timers.done(timer_id)
