"""Incidents in Redis: the document, its alerts, its hash-chained timeline, the indexes.

Every change goes through ``update``: the document is read under WATCH, changed by the
caller's function, and written back in one MULTI together with the timeline entry, the
incident events for paging, and the clock timers, so that a change, its record and its
consequences commit together or not at all (a concurrent writer makes it retry).

Keys (prefix ``hallmon:``): ``incident:{id}`` (JSON), ``incident:{id}:alerts`` (HASH
fingerprint → alert JSON), ``timeline:{id}`` (LIST of entries, each carrying the hash
of the one before it), ``incidents`` (ZSET id → detected time), ``open`` (HASH group
key → open incident id), ``watched`` (SET of incidents open or with reports pending or
overdue), ``seq:{day}`` (counter for ids).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Iterable

import redis.asyncio as aioredis
import redis.exceptions

from monitor.core.errors import HallmonError
from monitor.durable.events import IncidentEvent, publish
from monitor.durable.timers import Timers

P = "hallmon:"
RETENTION = timedelta(days=3 * 365 + 1)  # Shenzhen 4.3.4: keep the full record 3 years


class NotFound(HallmonError):
    pass


class Conflict(HallmonError):
    """The change does not apply to the incident as it is (e.g. ack a resolved one)."""


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


@dataclass
class Change:
    """What a mutation did: recorded on the timeline, told to paging."""

    action: str
    actor: str
    detail: dict[str, Any] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # IncidentEvent kinds
    alerts: dict[str, dict] = field(default_factory=dict)  # fingerprint → alert JSON to store
    timers_done: list[str] = field(default_factory=list)  # timers this change consumes


def _chain(prev: str, entry: dict[str, Any]) -> str:
    body = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev + body).encode()).hexdigest()


class IncidentStore:
    def __init__(self, client: aioredis.Redis, timers: Timers, reminder_default: float = 300.0):
        self.r = client
        self.timers = timers
        self.reminder_default = reminder_default

    # ── reads ────────────────────────────────────────────────────────────────────
    async def get(self, incident_id: str) -> dict | None:
        raw = await self.r.get(f"{P}incident:{incident_id}")
        return json.loads(raw) if raw else None

    async def require(self, incident_id: str) -> dict:
        doc = await self.get(incident_id)
        if doc is None:
            raise NotFound(incident_id)
        return doc

    async def alerts(self, incident_id: str) -> list[dict]:
        raw = await self.r.hvals(f"{P}incident:{incident_id}:alerts")
        return sorted((json.loads(v) for v in raw), key=lambda a: a["startsAt"])

    async def timeline(self, incident_id: str) -> list[dict]:
        return [json.loads(v) for v in await self.r.lrange(f"{P}timeline:{incident_id}", 0, -1)]

    async def verify_timeline(self, incident_id: str) -> bool:
        """True when no timeline entry was changed, removed or reordered after the fact."""
        prev = ""
        for entry in await self.timeline(incident_id):
            claimed = entry.pop("hash")
            if entry.get("prev") != prev or _chain(prev, entry) != claimed:
                return False
            prev = claimed
        doc = await self.get(incident_id)
        return doc is None or doc.get("timeline_head", "") == prev  # the tail was not cut off

    async def open_for(self, group: str) -> str | None:
        return await self.r.hget(f"{P}open", group)

    async def list(self, since: datetime | None = None, limit: int = 1000, offset: int = 0,
                   oldest_first: bool = False) -> list[dict]:
        lo = since.timestamp() if since else "-inf"
        if oldest_first:
            ids = await self.r.zrangebyscore(f"{P}incidents", lo, "+inf", start=offset, num=limit)
        else:
            ids = await self.r.zrevrangebyscore(f"{P}incidents", "+inf", lo, start=offset, num=limit)
        if not ids:
            return []
        raws = await self.r.mget([f"{P}incident:{i}" for i in ids])
        return [json.loads(r) for r in raws if r]

    async def watched(self) -> list[dict]:
        """Incidents still open or with a report pending or overdue: what the metrics show."""
        ids = list(await self.r.smembers(f"{P}watched"))
        raws = await self.r.mget([f"{P}incident:{i}" for i in ids]) if ids else []
        return [json.loads(r) for r in raws if r]

    # ── writes ───────────────────────────────────────────────────────────────────
    async def next_id(self, at: datetime, drill: bool) -> str:
        day = at.strftime("%Y%m%d")
        n = await self.r.incr(f"{P}seq:{day}")
        return f"{'DRILL' if drill else 'INC'}-{day}-{n:04d}"

    async def create(self, doc: dict, change: Change) -> dict | None:
        """Store a new incident as the open one of its group; None if another writer
        opened one for the group first (the caller then joins that one)."""
        # The claim and the document commit in one transaction: a write that fails (a
        # string Redis cannot encode, a lost connection) leaves no claim pointing at an
        # incident that does not exist. Any other group's claim changing meanwhile
        # makes it retry (openings are rare; alerts joining do not touch this key).
        for _ in range(50):
            async with self.r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(f"{P}open")
                    if await pipe.hget(f"{P}open", doc["group"]) is not None:
                        await pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.hset(f"{P}open", doc["group"], doc["id"])
                    await self._write(pipe, doc, change, new=True)
                    await pipe.execute()
                    return doc
                except redis.exceptions.WatchError:
                    continue
        raise Conflict(f"{doc['group']}: too many concurrent openings")

    async def release_dangling(self, group: str, incident_id: str) -> bool:
        """Drop the group's claim if it still names ``incident_id`` and that incident
        does not exist (a claim left by an older version's split write)."""
        async with self.r.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(f"{P}open", f"{P}incident:{incident_id}")
                if (await pipe.hget(f"{P}open", group) != incident_id
                        or await pipe.exists(f"{P}incident:{incident_id}")):
                    await pipe.unwatch()
                    return False
                pipe.multi()
                pipe.hdel(f"{P}open", group)
                await pipe.execute()
                return True
            except redis.exceptions.WatchError:
                return False

    async def update(self, incident_id: str, mutate: Callable[[dict, dict[str, dict]], Awaitable[Change | None]],
                     fingerprints: Iterable[str] = ()) -> tuple[dict, Change | None]:
        """Apply ``mutate(doc, alerts)`` atomically; it returns None for "nothing changed".
        ``alerts`` holds the stored alerts for ``fingerprints``."""
        key = f"{P}incident:{incident_id}"
        fps = list(fingerprints)
        for _ in range(50):
            async with self.r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise NotFound(incident_id)
                    doc = json.loads(raw)
                    stored: dict[str, dict] = {}
                    if fps:
                        vals = await pipe.hmget(f"{key}:alerts", fps)
                        stored = {fp: json.loads(v) for fp, v in zip(fps, vals) if v}
                    change = await mutate(doc, stored)
                    if change is None:
                        await pipe.unwatch()
                        return doc, None
                    pipe.multi()
                    await self._write(pipe, doc, change, new=False)
                    await pipe.execute()
                    return doc, change
                except redis.exceptions.WatchError:
                    continue
        raise Conflict(f"{incident_id}: too many concurrent changes")

    async def _write(self, pipe: aioredis.client.Pipeline, doc: dict, change: Change, new: bool) -> None:
        at = now_utc()
        key = f"{P}incident:{doc['id']}"
        entry = {"seq": doc.get("timeline_seq", 0) + 1, "at": iso(at), "actor": change.actor,
                 "action": change.action, "detail": change.detail, "prev": doc.get("timeline_head", "")}
        entry["hash"] = _chain(entry["prev"], {k: v for k, v in entry.items()})
        doc["timeline_seq"], doc["timeline_head"] = entry["seq"], entry["hash"]
        doc["updated_at"] = iso(at)
        pipe.set(key, json.dumps(doc, ensure_ascii=False))
        pipe.rpush(f"{P}timeline:{doc['id']}", json.dumps(entry, ensure_ascii=False))
        if change.alerts:
            pipe.hset(f"{key}:alerts", mapping={fp: json.dumps(a, ensure_ascii=False)
                                                for fp, a in change.alerts.items()})
        if new:
            pipe.zadd(f"{P}incidents", {doc["id"]: datetime.fromisoformat(doc["detected_at"]).timestamp()})
        if doc["status"] == "resolved":
            # no other incident can hold the group while this one is still open
            if await self.r.hget(f"{P}open", doc["group"]) == doc["id"]:
                pipe.hdel(f"{P}open", doc["group"])
            for k in (key, f"{key}:alerts", f"{P}timeline:{doc['id']}"):
                pipe.expire(k, RETENTION)
        live = any(c["status"] in ("pending", "overdue") for c in doc["clocks"])
        if live or doc["status"] != "resolved":
            pipe.sadd(f"{P}watched", doc["id"])
        else:
            pipe.srem(f"{P}watched", doc["id"])
        for timer_id in change.timers_done:
            await self.timers.done(timer_id, pipe)
        for kind in change.events:
            publish(pipe, IncidentEvent.of(kind, public(doc), iso(at), change.actor, change.detail))
        await self._sync_timers(pipe, doc)

    async def _sync_timers(self, pipe: aioredis.client.Pipeline, doc: dict) -> None:
        """Timers follow the clocks: a pending clock has a due timer and, until its
        reminder went out, a reminder timer; any other clock has none."""
        before = doc.get("reminder_before", self.reminder_default)
        for clock in doc["clocks"]:
            base = f"{doc['id']}|{clock['id']}"
            if clock["status"] == "pending":
                due = datetime.fromisoformat(clock["due_at"]).timestamp()
                await self.timers.schedule(f"{base}|due", due, {"incident": doc["id"], "clock": clock["id"],
                                                                "what": "due", "seq": clock["seq"]}, pipe)
                if not clock.get("reminded"):
                    await self.timers.schedule(f"{base}|remind", due - before,
                                               {"incident": doc["id"], "clock": clock["id"], "what": "remind",
                                                "seq": clock["seq"]}, pipe)
            else:
                await self.timers.cancel(f"{base}|due", pipe)
                await self.timers.cancel(f"{base}|remind", pipe)


def public(doc: dict) -> dict:
    """The incident JSON of DESIGN.md: the document without internal fields."""
    return {k: v for k, v in doc.items() if k not in ("frozen_plan", "group", "timeline_head", "timeline_seq")}
