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

import builtins
import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

import redis.asyncio as aioredis
import redis.exceptions

from monitor.core.errors import Conflict, NotFound, StoreBusy
from monitor.core.timesource import SYSTEM_TIME, TimeSource, iso, whole
from monitor.durable import notices, versions
from monitor.durable.events import IncidentEvent, publish
from monitor.durable.timers import Timers
from monitor.incidents.records import Change, Incident, StoredAlert, TimelineEntry

__all__ = ["Conflict", "IncidentStore", "Mutation", "NotFound", "P", "RETENTION"]

P = "hallmon:"
FOLDED_KEEP = 7 * 86400  # how long a folded alert's later news is redirected
RETENTION = timedelta(days=3 * 365 + 1)  # Shenzhen 4.3.4: keep the full record 3 years

# a change to an incident: the incident and the stored alerts asked for in, the changed
# incident and what happened out; None for "nothing changed"
Mutation = Callable[[Incident, Mapping[str, StoredAlert]], "tuple[Incident, Change] | None"]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _chain(prev: str, entry: dict[str, Any]) -> str:
    body = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev + body).encode()).hexdigest()



def _guard(group: str) -> str:
    """The key an opening of ``group`` watches: bumped by every change of the group's claim."""
    return f"{P}claim:{group}"


def _claimed(pipe: aioredis.client.Pipeline, group: str) -> None:
    pipe.incr(_guard(group))
    pipe.expire(_guard(group), 86400)  # only needs to outlive a transaction in flight

class IncidentStore:
    def __init__(self, client: aioredis.Redis, timers: Timers, reminder_default: float = 300.0,
                 time: TimeSource = SYSTEM_TIME):
        self.r = client
        self.timers = timers
        self.reminder_default = reminder_default
        self.time = time

    # ── reads ────────────────────────────────────────────────────────────────────
    async def get(self, incident_id: str) -> Incident | None:
        raw = await self.r.get(f"{P}incident:{incident_id}")
        return Incident.from_json(json.loads(raw)) if raw else None

    async def many(self, ids: Iterable[str]) -> dict[str, Incident | None]:
        """Each incident (None where there is none), in one MGET."""
        keys = builtins.list(ids)
        raws = await self.r.mget([f"{P}incident:{i}" for i in keys]) if keys else []
        return {i: Incident.from_json(json.loads(r)) if r else None for i, r in zip(keys, raws)}

    async def require(self, incident_id: str) -> Incident:
        inc = await self.get(incident_id)
        if inc is None:
            raise NotFound(incident_id)
        return inc

    async def alerts(self, incident_id: str) -> builtins.list[StoredAlert]:
        raw = await self.r.hvals(f"{P}incident:{incident_id}:alerts")
        return sorted((StoredAlert.from_json(json.loads(v)) for v in raw), key=lambda a: a.starts_at)

    async def _timeline_raw(self, incident_id: str) -> builtins.list[dict[str, Any]]:
        return [json.loads(v) for v in await self.r.lrange(f"{P}timeline:{incident_id}", 0, -1)]

    async def timeline(self, incident_id: str) -> builtins.list[TimelineEntry]:
        return [TimelineEntry.from_json(e) for e in await self._timeline_raw(incident_id)]

    async def verify_timeline(self, incident_id: str) -> bool:
        """True when no timeline entry was changed, removed or reordered after the fact."""
        prev = ""
        for entry in await self._timeline_raw(incident_id):
            claimed = entry.pop("hash", None)
            if entry.get("prev") != prev or _chain(prev, entry) != claimed:
                return False
            prev = claimed
        inc = await self.get(incident_id)
        return inc is None or inc.timeline_head == prev  # the tail was not cut off

    async def open_for(self, group: str) -> str | None:
        value = await self.r.hget(f"{P}open", group)
        return _text(value) if value is not None else None

    async def open_many(self, groups: Iterable[str]) -> list[str | None]:
        """The open incident of each group, if any (one command)."""
        keys = list(groups)
        return [_text(v) if v is not None else None for v in await self.r.hmget(f"{P}open", keys)] if keys else []

    async def open_ids(self) -> list[str]:
        """Every incident that holds a group (open or acknowledged)."""
        return [_text(v) for v in await self.r.hvals(f"{P}open")]

    async def folded_into(self, fingerprints: Iterable[str]) -> list[str | None]:
        """The incident each alert was folded into (late folding under an uplink), if any."""
        fps = list(fingerprints)
        return [_text(v) if v is not None else None for v in await self.r.hmget(f"{P}folded", fps)] if fps else []

    async def note_folded(self, fingerprints: Iterable[str], into: str) -> None:
        """Later news of these alerts (their resolution) goes to ``into``."""
        fps = list(fingerprints)
        if fps:
            async with self.r.pipeline(transaction=True) as pipe:
                pipe.hset(f"{P}folded", mapping={fp: into for fp in fps})
                pipe.expire(f"{P}folded", FOLDED_KEEP)
                await pipe.execute()

    async def list(self, since: datetime | None = None, limit: int = 1000, offset: int = 0,
                   oldest_first: bool = False) -> builtins.list[Incident]:
        lo: float | str = since.timestamp() if since else "-inf"
        if oldest_first:
            ids = await self.r.zrangebyscore(f"{P}incidents", lo, "+inf", start=offset, num=limit)
        else:
            ids = await self.r.zrevrangebyscore(f"{P}incidents", "+inf", lo, start=offset, num=limit)
        if not ids:
            return []
        raws = await self.r.mget([f"{P}incident:{_text(i)}" for i in ids if isinstance(i, (bytes, str))])
        return [Incident.from_json(json.loads(r)) for r in raws if r]

    async def watched(self) -> builtins.list[Incident]:
        """Incidents still open or with a report pending or overdue: what the metrics show."""
        ids = list(await self.r.smembers(f"{P}watched"))
        raws = await self.r.mget([f"{P}incident:{_text(i)}" for i in ids]) if ids else []
        return [Incident.from_json(json.loads(r)) for r in raws if r]

    # ── writes ───────────────────────────────────────────────────────────────────
    async def next_id(self, at: datetime, drill: bool) -> str:
        day = at.strftime("%Y%m%d")
        n = await self.r.incr(f"{P}seq:{day}")
        return f"{'DRILL' if drill else 'INC'}-{day}-{n:04d}"

    async def create(self, inc: Incident, change: Change) -> Incident | None:
        """Store a new incident as the open one of its group; None if another writer
        opened one for the group first (the caller then joins that one)."""
        # The claim and the document commit in one transaction: a write that fails (a
        # string Redis cannot encode, a lost connection) leaves no claim pointing at an
        # incident that does not exist. The transaction watches the group's own guard
        # key, which every writer of the group's claim bumps (``_claimed``): openings of
        # other groups never make it retry (watching the whole claims hash did: 150 new
        # groups at once took 13 s of retries).
        guard = _guard(inc.group)
        for _ in range(50):
            async with self.r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(guard)
                    if await pipe.hget(f"{P}open", inc.group) is not None:
                        await pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.hset(f"{P}open", inc.group, inc.id)
                    _claimed(pipe, inc.group)
                    inc = await self._write(pipe, inc, change, new=True)
                    await pipe.execute()
                    return inc
                except redis.exceptions.WatchError:
                    continue
        raise StoreBusy(f"{inc.group}: too many concurrent openings; retry")

    async def release_dangling(self, group: str, incident_id: str) -> bool:
        """Drop the group's claim if it still names ``incident_id`` and that incident
        does not exist (a claim left by an older version's split write)."""
        async with self.r.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(_guard(group), f"{P}incident:{incident_id}")
                if (await pipe.hget(f"{P}open", group) != incident_id
                        or await pipe.exists(f"{P}incident:{incident_id}")):
                    await pipe.unwatch()
                    return False
                pipe.multi()
                pipe.hdel(f"{P}open", group)
                _claimed(pipe, group)
                await pipe.execute()
                return True
            except redis.exceptions.WatchError:
                return False

    async def update(self, incident_id: str, mutate: Mutation,
                     fingerprints: Iterable[str] = ()) -> tuple[Incident, Change | None]:
        """Apply ``mutate(incident, alerts)`` atomically; ``alerts`` holds the stored
        alerts for ``fingerprints``. A concurrent writer makes it read and apply again."""
        key = f"{P}incident:{incident_id}"
        fps = list(fingerprints)
        for _ in range(50):
            async with self.r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise NotFound(incident_id)
                    inc = Incident.from_json(json.loads(raw))
                    stored: dict[str, StoredAlert] = {}
                    if fps:
                        vals = await pipe.hmget(f"{key}:alerts", fps)
                        stored = {fp: StoredAlert.from_json(json.loads(v)) for fp, v in zip(fps, vals) if v}
                    outcome = mutate(inc, stored)
                    if outcome is None:
                        await pipe.unwatch()
                        return inc, None
                    inc, change = outcome
                    pipe.multi()
                    inc = await self._write(pipe, inc, change, new=False)
                    await pipe.execute()
                    return inc, change
                except redis.exceptions.WatchError:
                    continue
        raise StoreBusy(f"{incident_id}: too many concurrent changes; retry")

    async def _write(self, pipe: aioredis.client.Pipeline, inc: Incident, change: Change, new: bool) -> Incident:
        at = whole(self.time.now())
        key = f"{P}incident:{inc.id}"
        seq, prev = inc.timeline_seq + 1, inc.timeline_head
        entry: dict[str, Any] = {"v": versions.TIMELINE, "seq": seq, "at": iso(at), "actor": change.actor, "action": change.action,
                                 "detail": change.detail, "prev": prev}
        entry["hash"] = head = _chain(prev, dict(entry))
        inc = replace(inc, timeline_seq=seq, timeline_head=head, updated_at=at)
        pipe.set(key, inc.dumps())
        pipe.rpush(f"{P}timeline:{inc.id}", json.dumps(entry, ensure_ascii=False))
        if change.alerts:
            pipe.hset(f"{key}:alerts", mapping={fp: json.dumps(a.to_json(), ensure_ascii=False)
                                                for fp, a in change.alerts.items()})
        if new:
            pipe.zadd(f"{P}incidents", {inc.id: inc.detected_at.timestamp()})
        if inc.status == "resolved":
            # no other incident can hold the group while this one is still open
            if await self.r.hget(f"{P}open", inc.group) == inc.id:
                pipe.hdel(f"{P}open", inc.group)
                _claimed(pipe, inc.group)
            for k in (key, f"{key}:alerts", f"{P}timeline:{inc.id}"):
                pipe.expire(k, RETENTION)
        if inc.live:
            pipe.sadd(f"{P}watched", inc.id)
        else:
            pipe.srem(f"{P}watched", inc.id)
        for timer_id in change.timers_done:
            await self.timers.done(timer_id, pipe)
        public = inc.public_json()
        for kind in change.events:
            publish(pipe, IncidentEvent.of(kind, public, iso(at), change.actor, change.detail))
        clock = inc.clock(change.detail.get("clock", ""))
        notices.publish(pipe, notices.kind_for(change.events), inc.id, inc.units, clock=clock.id if clock else None)
        await self._sync_timers(pipe, inc)
        return inc

    async def _sync_timers(self, pipe: aioredis.client.Pipeline, inc: Incident) -> None:
        """Timers follow the clocks: a pending clock has a due timer and, until its
        reminder went out, a reminder timer; any other clock has none. An incident a
        rule on duration would raise has a regrade timer."""
        if inc.regrade_at is not None and inc.status != "resolved":
            await self.timers.schedule(f"{inc.id}|regrade", inc.regrade_at.timestamp(),
                                       {"incident": inc.id, "what": "regrade"}, pipe)
        else:
            await self.timers.cancel(f"{inc.id}|regrade", pipe)
        if inc.held_until is not None and inc.status != "resolved":
            await self.timers.schedule(f"{inc.id}|unhold", inc.held_until.timestamp(),
                                       {"incident": inc.id, "what": "unhold"}, pipe)
        else:
            await self.timers.cancel(f"{inc.id}|unhold", pipe)
        before = inc.reminder_before if inc.reminder_before is not None else self.reminder_default
        # a maintenance window holds the clocks' pages too: what falls due inside it
        # fires when it ends (Putian art. 3)
        held = inc.held_until.timestamp() if inc.maintenance and inc.held_until is not None else 0.0
        for clock in inc.clocks:
            base = f"{inc.id}|{clock.id}"
            if clock.status == "pending":
                due = clock.due_at.timestamp()
                await self.timers.schedule(f"{base}|due", max(due, held), {"incident": inc.id, "clock": clock.id,
                                                                           "what": "due", "seq": clock.seq}, pipe)
                if not clock.reminded:
                    await self.timers.schedule(f"{base}|remind", max(due - before, held),
                                               {"incident": inc.id, "clock": clock.id, "what": "remind",
                                                "seq": clock.seq}, pipe)
            else:
                await self.timers.cancel(f"{base}|due", pipe)
                await self.timers.cancel(f"{base}|remind", pipe)
