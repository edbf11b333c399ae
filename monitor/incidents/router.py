"""Router: alerts in, incidents out, at the level the plan prescribes.

Every alert — from the probes' fault tracker, an Alertmanager webhook, or the alerts
API — is classified by its unit's plan (fault → category, system), grouped with the
open incident of the same category and system (or of its ``cause``, a site's uplink),
deduplicated by fingerprint, and the incident's scope, level and clocks recomputed.
The router raises a level by itself but never lowers it. The plan is frozen into the
incident when it opens; a reload never changes an incident in flight.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

import structlog

from monitor.config.model import Config
from monitor.core.alert import Alert, rfc3339
from monitor.core.workdays import WorkCalendar
from monitor.incidents.store import Change, Conflict, IncidentStore, NotFound, iso, now_utc
from monitor.plans.clocks import clocks_for, due_time, spec_of
from monitor.plans.levels import OrgView, decide, facts
from monitor.plans.model import Plan, load_plan

log = structlog.get_logger("hallmon.router")

FLAGS = ("casualties", "injuries", "property_loss", "loss_of_control")


class Router:
    def __init__(self, store: IncidentStore, config: Callable[[], Config], calendar: WorkCalendar | None = None):
        self.store = store
        self._config = config
        self.calendar = calendar or WorkCalendar()
        self._plans: dict[str, Plan] = {}
        # one writer per group in this process: concurrent requests for one outage queue
        # here instead of colliding on the incident's WATCH (replicas still use WATCH)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # ── classification ───────────────────────────────────────────────────────────
    def plan_for_unit(self, unit: str | None) -> Plan:
        cfg = self._config()
        ref = cfg.plan
        for u in cfg.organisation.units:
            if u.id == unit and u.plan:
                ref = u.plan
        return load_plan(ref)

    def frozen(self, doc: dict) -> Plan:
        plan = self._plans.get(doc["id"])
        if plan is None:
            if len(self._plans) >= 1000:  # a cache, not a registry: incidents come and go for years
                self._plans.clear()
            plan = self._plans[doc["id"]] = Plan.model_validate(doc["frozen_plan"])
        return plan

    def classify(self, alert: Alert) -> dict[str, Any]:
        cfg = self._config()
        labels = alert.labels
        site = labels.get("site")
        known = cfg.sites.get(site) if site else None
        unit = known[0].id if known else labels.get("unit")
        plan = self.plan_for_unit(unit)
        fault = labels.get("fault")
        cat = plan.category_for(fault)
        system = (cat.system if cat and cat.system else None) or labels.get("system") or "unknown"
        # a fault caused by the site's uplink folds into the uplink fault's incident
        cause = labels.get("cause")
        group_cat = plan.category_for(cause) if cause else cat
        group_system = self._uplink_system(site) if cause else system
        category = cat.id if cat else "other"
        drill = labels.get("drill") == "true"
        group = f"{'drill|' if drill else ''}{group_cat.id if group_cat else 'other'}|{group_system}"
        return {"plan": plan, "category": group_cat.id if group_cat else category, "system": group_system,
                "site": site, "unit": unit, "unmapped": cat is None or known is None, "drill": drill,
                "group": group, "fault": fault}

    def _uplink_system(self, site: str | None) -> str:
        """The system of the site's uplink target, whose incident caused faults join."""
        cfg = self._config()
        if site in cfg.sites:
            uplinks = cfg.sites[site][1].uplinks
            for t in cfg.targets:
                if t.site == site and t.name in uplinks:
                    return t.system
        return "network"

    # ── ingest ───────────────────────────────────────────────────────────────────
    async def ingest(self, alerts: Iterable[Alert], actor: str = "router") -> list[str]:
        """Store every alert in an incident; returns the incident ids touched."""
        groups: dict[str, list[tuple[Alert, dict]]] = defaultdict(list)
        for alert in alerts:
            c = self.classify(alert)
            groups[c["group"]].append((alert, c))
        touched = []
        for group, items in groups.items():
            async with self._locks[group]:
                touched.append(await self._ingest_group(group, items, actor))
        return [t for t in touched if t]

    async def _ingest_group(self, group: str, items: list[tuple[Alert, dict]], actor: str) -> str | None:
        now = now_utc()
        for _ in range(5):
            incident_id = await self.store.open_for(group)
            if incident_id is None:
                firing = [(a, c) for a, c in items if a.resolved_at(now) is None]
                if not firing:
                    log.info("resolved_alerts_without_incident", group=group, count=len(items))
                    return None
                doc = self._new_incident(group, firing, now)
                doc["id"] = await self.store.next_id(now.astimezone(self._tz(doc)), doc["drill"])
                change = Change("opened", actor, {"alerts": len(firing)}, events=["opened"])
                self._merge(doc, {}, items, now, change)
                doc["maintenance"] = self._in_maintenance(doc["sites"], datetime.fromisoformat(doc["detected_at"]))
                self._relevel(doc, now, change, opening=True)
                if await self.store.create(doc, change):
                    log.warning("incident_opened", incident=doc["id"], level=doc["level"], category=doc["category"],
                                sites=doc["sites"], rule=doc["decision"]["rule"])
                    return doc["id"]
                continue  # another writer opened the group's incident first: join it

            async def mutate(doc: dict, stored: dict[str, dict]) -> Change | None:
                change = Change("alerts", actor)
                if not self._merge(doc, stored, items, now, change):
                    return None
                self._relevel(doc, now, change)
                return change

            try:
                doc, _ = await self.store.update(incident_id, mutate, [a.fingerprint for a, _ in items])
            except NotFound:
                if await self.store.release_dangling(group, incident_id):
                    log.warning("dangling_claim_repaired", group=group, incident=incident_id)
                continue
            if doc["status"] != "resolved":
                return doc["id"]
        raise Conflict(f"could not place alerts of group {group}")

    def _in_maintenance(self, sites: list[str], at: datetime) -> bool:
        """Every affected site inside an announced maintenance window (Putian art. 3):
        the incident is recorded and marked; paging holds its pages back."""
        cfg = self._config()
        return bool(sites) and all(
            site in cfg.sites and any(w.from_ <= at < w.to for w in cfg.sites[site][1].maintenance)
            for site in sites)

    def _tz(self, doc: dict):
        return self._config().site_timezone(doc["sites"][0] if doc.get("sites") else "")

    def _new_incident(self, group: str, items: list[tuple[Alert, dict]], now: datetime) -> dict:
        _, c = items[0]
        plan: Plan = c["plan"]
        detected = min(a.starts_at for a, _ in items)
        return {
            "id": "", "group": group, "status": "open", "recovered": False,
            "level": 3, "level_name": plan.level_name(3), "plan": plan.id,
            "category": c["category"], "system": c["system"], "sites": [], "units": [],
            "detected_at": iso(detected), "opened_at": iso(now),
            "decision": None, "level_history": [], "level_since": iso(detected),
            "clocks": [], "flags": [], "faults": [],
            "drill": c["drill"], "maintenance": False, "unmapped": False, "manual": False,
            "alerts_firing": 0, "alerts_total": 0,
            "acknowledged": None, "resolved": None, "reports": [],
            "reminder_before": plan.reminder_before,
            "frozen_plan": plan.model_dump(mode="json", by_alias=True),
        }

    def _merge(self, doc: dict, stored: dict[str, dict], items: list[tuple[Alert, dict]], now: datetime,
               change: Change) -> bool:
        """Fold alerts into the incident; False when nothing new was learnt."""
        changed = False
        detected_before = doc["detected_at"]
        for alert, c in items:
            fp = alert.fingerprint
            ended = alert.resolved_at(now)
            old = stored.get(fp) or change.alerts.get(fp)
            new = {"fingerprint": fp, "labels": dict(alert.labels), "annotations": dict(alert.annotations),
                   "startsAt": rfc3339(alert.starts_at), "endsAt": rfc3339(ended) if ended else None,
                   "status": "resolved" if ended else "firing", "source": alert.source}
            if old and old["status"] == new["status"] and old["startsAt"] <= new["startsAt"]:
                continue  # a duplicate (another replica, the other ingest path)
            if old and old["status"] == "firing" and new["status"] == "firing":
                new["startsAt"] = min(old["startsAt"], new["startsAt"])
            change.alerts[fp] = new
            changed = True
            doc["alerts_total"] += 0 if old else 1
            doc["alerts_firing"] += (new["status"] == "firing") - (bool(old) and old["status"] == "firing")
            if new["status"] == "firing":
                for key, value in (("sites", c["site"]), ("units", c["unit"]), ("faults", c["fault"])):
                    if value and value not in doc[key]:
                        doc[key].append(value)
                        doc[key].sort()
                doc["unmapped"] |= c["unmapped"]
                if alert.starts_at < datetime.fromisoformat(doc["detected_at"]):
                    doc["detected_at"] = iso(alert.starts_at)
        if not changed:
            return False
        if doc["detected_at"] != detected_before:
            self._reanchor(doc, detected_before, change)
        recovered = doc["alerts_firing"] == 0
        if recovered != doc["recovered"]:
            doc["recovered"] = recovered
            change.detail["recovered"] = recovered
            if recovered:
                change.events.append("recovered")
        change.detail.setdefault("alerts", len(change.alerts))
        return True

    def _reanchor(self, doc: dict, old: str, change: Change) -> None:
        """An alert that started earlier arrived later: detection moves back, and with it
        the level's start (if never upgraded) and every pending clock anchored there."""
        if doc["level_since"] == old:
            doc["level_since"] = doc["detected_at"]
        if not doc["clocks"]:
            return
        detected = datetime.fromisoformat(doc["detected_at"])
        plan, tz = self.frozen(doc), self._tz(doc)
        moved = []
        for clock in doc["clocks"]:
            spec = spec_of(plan, clock["id"])
            if clock["status"] != "pending" or clock["anchor"] != "detected" or spec is None or clock["seq"] != 1:
                continue
            due, estimated = due_time(spec, detected, tz, self.calendar)
            clock.update(due_at=due.isoformat(timespec="seconds"), estimated=estimated,
                         anchored_at=detected.astimezone(tz).isoformat(timespec="seconds"))
            moved.append(clock["id"])
        if moved:
            change.detail["clocks_reanchored"] = {"detected_at": doc["detected_at"], "clocks": moved}

    def _relevel(self, doc: dict, now: datetime, change: Change, opening: bool = False) -> None:
        """Recompute the level from scope; raise only. Add the clocks the level demands."""
        plan = Plan.model_validate(doc["frozen_plan"]) if opening else self.frozen(doc)
        org = OrgView.from_config(self._config())
        detected = datetime.fromisoformat(doc["detected_at"])
        f = facts(org, doc["category"], doc["units"], doc["sites"], (now - detected).total_seconds(), doc["flags"])
        decision = decide(plan, f)
        if doc["unmapped"] and opening:
            decision = type(decision)(3, "unmapped", "hallmon", "no site or plan rule matched: lowest level", f)
        if opening or decision.level < doc["level"]:
            if not opening:
                change.events.append("upgraded")
                change.detail["upgraded"] = {"from": doc["level"], "to": decision.level, "rule": decision.rule}
                doc["level_since"] = iso(now)
            doc["level"] = decision.level
            doc["level_name"] = plan.level_name(decision.level)
            doc["decision"] = decision.to_json()
            doc["level_history"].append({"level": decision.level, "at": iso(now), "by": "router",
                                         "rule": decision.rule, "reason": decision.source})
            self._add_clocks(doc, plan)

    def _add_clocks(self, doc: dict, plan: Plan, resolved: datetime | None = None) -> list[str]:
        tz = self._tz(doc)
        new = clocks_for(plan.clocks, doc["level"], doc["category"], {c["id"] for c in doc["clocks"]},
                         datetime.fromisoformat(doc["detected_at"]), datetime.fromisoformat(doc["level_since"]),
                         tz, self.calendar, resolved)
        doc["clocks"].extend(new)
        return [c["id"] for c in new]

    # ── people's actions ─────────────────────────────────────────────────────────
    async def ack(self, incident_id: str, by: str, via: str = "api") -> dict:
        async def mutate(doc: dict, _: dict) -> Change | None:
            if doc["status"] == "resolved":
                raise Conflict("incident is resolved")
            if doc["status"] == "acknowledged":
                return None
            doc["status"] = "acknowledged"
            doc["acknowledged"] = {"by": by, "at": iso(now_utc()), "via": via}
            return Change("acknowledged", by, {"via": via}, events=["acknowledged"])
        return (await self.store.update(incident_id, mutate))[0]

    async def set_level(self, incident_id: str, level: int, by: str, reason: str,
                        flags: Iterable[str] = ()) -> dict:
        async def mutate(doc: dict, _: dict) -> Change | None:
            if doc["status"] == "resolved":
                raise Conflict("incident is resolved")
            now = now_utc()
            plan = self.frozen(doc)
            old = doc["level"]
            doc["flags"] = sorted(set(doc["flags"]) | set(flags))
            doc["level"], doc["level_name"] = level, plan.level_name(level)
            if level < old:
                doc["level_since"] = iso(now)
            doc["decision"] = {"level": level, "rule": "manual", "source": "Shenzhen 5.1.2", "by": by,
                               "reason": reason, "facts": (doc.get("decision") or {}).get("facts", {})}
            doc["level_history"].append({"level": level, "at": iso(now), "by": by, "rule": "manual",
                                         "reason": reason})
            added = self._add_clocks(doc, plan)
            return Change("level_set", by, {"from": old, "to": level, "reason": reason, "clocks_added": added},
                          events=["upgraded"])
        return (await self.store.update(incident_id, mutate))[0]

    async def set_flags(self, incident_id: str, flags: Iterable[str], by: str, reason: str) -> dict:
        """A person records harm (casualties, injuries, property loss…); the plan's level
        rules see the flags at once and may raise the level (Xiamen 3(3))."""
        async def mutate(doc: dict, _: dict) -> Change | None:
            if doc["status"] == "resolved":
                raise Conflict("incident is resolved")
            added = sorted(set(flags) - set(doc["flags"]))
            if not added:
                return None
            doc["flags"] = sorted(set(doc["flags"]) | set(added))
            change = Change("flags_set", by, {"flags": added, "reason": reason})
            before = doc["level"]
            self._relevel(doc, now_utc(), change)
            if doc["level"] != before:
                doc["level_history"][-1].update(by=by, reason=reason)
            return change
        return (await self.store.update(incident_id, mutate))[0]

    async def resolve(self, incident_id: str, by: str, result: str, at: datetime | None = None) -> dict:
        async def mutate(doc: dict, _: dict) -> Change | None:
            if doc["status"] == "resolved":
                raise Conflict("incident is already resolved")
            now = now_utc()
            when = at or now
            if when > now:
                raise ValueError("at: must not be in the future")
            if when < datetime.fromisoformat(doc["detected_at"]):
                raise ValueError("at: must not be before the incident was detected")
            doc["status"] = "resolved"
            doc["resolved"] = {"by": by, "at": iso(when), "result": result, "recorded_at": iso(now)}
            # recurring reports end with the incident
            doc["clocks"] = [c for c in doc["clocks"] if not (c["every_seconds"] and c["status"] == "pending")]
            added = self._add_clocks(doc, self.frozen(doc), resolved=when)
            return Change("resolved", by, {"result": result, "at": iso(when), "clocks_added": added},
                          events=["resolved"])
        return (await self.store.update(incident_id, mutate))[0]

    async def file_report(self, incident_id: str, clock_id: str, by: str, at: datetime | None,
                          note: str | None) -> dict:
        async def mutate(doc: dict, _: dict) -> Change | None:
            clock = next((c for c in doc["clocks"] if c["id"] == clock_id), None)
            if clock is None:
                raise KeyError(clock_id)
            now = now_utc()
            when = at or now
            if when > now:
                raise ValueError("at: must not be in the future")
            late = when > datetime.fromisoformat(clock["due_at"])
            doc["reports"].append({"clock": clock_id, "seq": clock["seq"], "by": by, "at": iso(when),
                                   "note": note, "late": late})
            if clock["every_seconds"] and doc["status"] != "resolved":
                # the next progress report falls due one interval after this one
                due = datetime.fromisoformat(clock["due_at"])
                while due <= now:
                    due += timedelta(seconds=clock["every_seconds"])
                clock.update(due_at=iso(due), status="pending", seq=clock["seq"] + 1, reminded=False,
                             filed={"by": by, "at": iso(when), "note": note})
            else:
                clock.update(status="met", filed={"by": by, "at": iso(when), "note": note, "late": late})
            return Change("report_filed", by, {"clock": clock_id, "late": late, "note": note})
        return (await self.store.update(incident_id, mutate))[0]

    async def open_manual(self, category: str, site: str, by: str, summary: str, flags: Iterable[str],
                          drill: bool = False, level: int | None = None) -> dict:
        """A person reports what no probe sees (fire, epidemic, public order…)."""
        cfg = self._config()
        if site not in cfg.sites:
            raise ValueError(f"site: no site {site!r}")
        unit = cfg.sites[site][0].id
        labels = {"alertname": "ManualIncident", "fault": f"manual.{category}", "site": site, "unit": unit,
                  "system": "manual", "reported_by": by}
        if drill:
            labels["drill"] = "true"
        alert = Alert(labels=labels, annotations={"summary": summary}, starts_at=now_utc(), source="manual")
        [incident_id] = await self.ingest([alert], actor=by)
        doc = await self.store.require(incident_id)
        if flags or level:
            doc = await self.set_level(incident_id, min(level or 3, doc["level"]), by,
                                       f"manual report: {summary}", flags)
            await self.relevel_now(incident_id, by)
        return await self.store.require(incident_id)

    async def relevel_now(self, incident_id: str, by: str) -> dict:
        async def mutate(doc: dict, _: dict) -> Change | None:
            change = Change("relevel", by)
            before = doc["level"]
            self._relevel(doc, now_utc(), change)
            return change if doc["level"] != before else None
        return (await self.store.update(incident_id, mutate))[0]

    # ── clocks firing ────────────────────────────────────────────────────────────
    async def clock_timer(self, timer_id: str, payload: dict, timers) -> None:
        """A clock's reminder or due time came: tell paging, mark overdue. The timer is
        removed in the same transaction as that change, so it fires once."""
        async def mutate(doc: dict, _: dict) -> Change | None:
            clock = next((c for c in doc["clocks"] if c["id"] == payload["clock"]), None)
            if clock is None or clock["status"] != "pending" or clock["seq"] != payload["seq"]:
                return None  # filed, or superseded since the timer was set
            if payload["what"] == "remind":
                if clock.get("reminded"):
                    return None  # handled already (the timer was claimed again after its lease)
                clock["reminded"] = True
                return Change("reminder", "clock", {"clock": clock["id"], "due_at": clock["due_at"]},
                              events=["reminder"], timers_done=[timer_id])
            clock["status"] = "overdue"
            change = Change("overdue", "clock", {"clock": clock["id"], "due_at": clock["due_at"]},
                            events=["overdue"], timers_done=[timer_id])
            if clock["every_seconds"] and doc["status"] != "resolved":
                nxt = dict(clock, status="pending", seq=clock["seq"] + 1, reminded=False,
                           due_at=iso(datetime.fromisoformat(clock["due_at"]) + timedelta(seconds=clock["every_seconds"])))
                doc["clocks"].append(nxt)
                clock["id"] = f"{clock['id']}#{clock['seq']}"  # the missed one stays on record
                change.detail.update(clock=clock["id"], next_due_at=nxt["due_at"])
            return change

        try:
            _, change = await self.store.update(payload["incident"], mutate)
        except NotFound:
            change = None
        if change is None:
            await timers.done(timer_id)
