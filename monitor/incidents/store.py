"""Incidents in Redis: the document, its alerts, its hash-chained timeline, the indexes.

Every change goes through ``update``: the document is read under WATCH, changed by the
caller's function, and written back in one MULTI together with the timeline entry, the
incident events for paging, and the clock timers, so that a change, its record and its
consequences commit together or not at all (a concurrent writer makes it retry).

Keys (prefix ``hallmon:``): ``incident:{id}`` (JSON; a resolved one deflated, ``packing``), ``incident:{id}:alerts`` (HASH
fingerprint → alert JSON), ``timeline:{id}`` (LIST of entries, each carrying the hash
of the one before it), ``incidents`` (ZSET id → detected time), ``open`` (HASH group
key → open incident id), ``watched`` (SET of incidents open or with reports pending or
overdue), ``seq:{day}`` (counter for ids), ``plan:{digest}`` (a frozen plan, once per
digest: the document names it by ``frozen_plan_digest``; a document an older release
wrote still carries its own copy, read as it is until ``history.migrate_history``
compacts it), and the secondary indexes of ``indexes``.
"""
from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

import redis.asyncio as aioredis
import redis.exceptions

from monitor.core.errors import Conflict, NotFound, StoreBusy
from monitor.core.timesource import SYSTEM_TIME, TimeSource, iso, whole
from monitor.durable import notices, versions
from monitor.durable.events import IncidentEvent, publish
from monitor.durable.timers import Timers
from monitor.incidents import indexes, packing
from monitor.incidents.records import Change, Incident, StoredAlert, TimelineEntry, clock_ref

__all__ = ["Conflict", "IncidentStore", "Mutation", "NotFound", "P", "Page", "RETENTION"]

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


def plan_key(digest: str) -> str:
    return f"{P}plan:{digest}"


PLAN_FORM = 1  # the version of the stored form of ``plan:{digest}``: {"v", "digest", "plan"}
_PLANS: dict[str, Mapping[str, Any]] = {}  # frozen plans by digest, shared by every incident read


def compact_json(inc: Incident) -> str:
    """The document without its frozen plan (named by ``frozen_plan_digest``); a resolved
    one deflated as well (``packing``)."""
    doc = inc.to_json()
    del doc["frozen_plan"]
    return packing.pack(doc) if inc.status == "resolved" else json.dumps(doc, ensure_ascii=False)


def plan_json(inc: Incident) -> str:
    """The stored form of the incident's frozen plan, under ``plan_key(digest)``."""
    return json.dumps({"v": PLAN_FORM, "digest": inc.frozen_plan.digest, "plan": inc.frozen_plan.data},
                      ensure_ascii=False)


async def decode(client: aioredis.Redis | aioredis.client.Pipeline,
                 raws: Iterable[bytes | str | None]) -> builtins.list[Incident | None]:
    """Stored documents to incidents; a compacted one gets its frozen plan from
    ``plan:{digest}`` (read once per digest per process, shared by every incident)."""
    docs = [packing.inflate(json.loads(r)) if r else None for r in raws]
    missing = sorted({d["frozen_plan_digest"] for d in docs
                      if d is not None and "frozen_plan" not in d and d.get("frozen_plan_digest") not in _PLANS})
    if missing:
        for digest, raw in zip(missing, await client.mget([plan_key(m) for m in missing])):
            if raw is not None:
                if len(_PLANS) >= 256:  # a cache: plan versions come and go with reloads
                    _PLANS.clear()
                _PLANS[digest] = json.loads(raw)["plan"]
    out: builtins.list[Incident | None] = []
    for d in docs:
        if d is not None and "frozen_plan" not in d:
            d["frozen_plan"] = _PLANS.get(d.get("frozen_plan_digest", ""), {})
        out.append(Incident.from_json(d) if d is not None else None)
    return out


def _claimed(pipe: aioredis.client.Pipeline, group: str) -> None:
    pipe.incr(_guard(group))
    pipe.expire(_guard(group), 86400)  # only needs to outlive a transaction in flight

@dataclass(frozen=True, slots=True)
class Page:
    """One page of a search; ``next_offset``: where the next page starts (None: the last).
    An index entry whose document expired counts in the page but is not in it."""

    incidents: builtins.list[Incident]
    next_offset: int | None


class IncidentStore:
    def __init__(self, client: aioredis.Redis, timers: Timers, reminder_default: float = 300.0,
                 time: TimeSource = SYSTEM_TIME):
        self.r = client
        self.timers = timers
        self.reminder_default = reminder_default
        self.time = time
        self._plans_written: set[str] = set()

    # ── reads ────────────────────────────────────────────────────────────────────
    async def get(self, incident_id: str) -> Incident | None:
        return (await decode(self.r, [await self.r.get(f"{P}incident:{incident_id}")]))[0]

    async def many(self, ids: Iterable[str]) -> dict[str, Incident | None]:
        """Each incident (None where there is none), in one MGET."""
        keys = builtins.list(ids)
        raws = await self.r.mget([f"{P}incident:{i}" for i in keys]) if keys else []
        return dict(zip(keys, await decode(self.r, raws)))

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

    async def unresolved(self) -> list[tuple[str, bytes | str]]:
        """(id, stored document) of every incident open or acknowledged, read through the
        status indexes: whatever the history, only these."""
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.zrange(f"{indexes.IDX}status:open", 0, -1)
            pipe.zrange(f"{indexes.IDX}status:acknowledged", 0, -1)
            ids = sorted({_text(i) for page in await pipe.execute() for i in page})
        raws = await self.r.mget([f"{P}incident:{i}" for i in ids]) if ids else []
        return [(i, raw) for i, raw in zip(ids, raws) if raw is not None]

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
        return (await self.search(indexes.Search(since=since), limit, offset, oldest_first)).incidents

    async def search(self, search: indexes.Search, limit: int = 1000, offset: int = 0,
                     oldest_first: bool = False) -> "Page":
        """One page of the incidents matching ``search``, read through the indexes: only
        the documents it returns are read."""
        ids = await indexes.ids(self.r, search, limit, offset, oldest_first)
        return Page(await self._docs(ids), offset + len(ids) if len(ids) == limit else None)

    async def _docs(self, ids: builtins.list[str]) -> builtins.list[Incident]:
        raws = await self.r.mget([f"{P}incident:{i}" for i in ids]) if ids else []
        return [inc for inc in await decode(self.r, raws) if inc is not None]

    async def watched(self) -> builtins.list[Incident]:
        """Incidents still open or with a report pending or overdue: what the metrics show."""
        return await self._docs([_text(i) for i in await self.r.smembers(f"{P}watched")])

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
                    inc = await self._write(pipe, inc, change)
                    await pipe.execute()
                    self._plans_written.add(inc.frozen_plan.digest)
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
                    before = (await decode(pipe, [raw]))[0]
                    assert before is not None
                    inc = before
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
                    inc = await self._write(pipe, inc, change, before)
                    await pipe.execute()
                    self._plans_written.add(inc.frozen_plan.digest)
                    return inc, change
                except redis.exceptions.WatchError:
                    continue
        raise StoreBusy(f"{incident_id}: too many concurrent changes; retry")

    async def _write(self, pipe: aioredis.client.Pipeline, inc: Incident, change: Change,
                     before: Incident | None = None) -> Incident:
        at = whole(self.time.now())
        key = f"{P}incident:{inc.id}"
        seq, prev = inc.timeline_seq + 1, inc.timeline_head
        entry: dict[str, Any] = {"v": versions.TIMELINE, "seq": seq, "at": iso(at), "actor": change.actor, "action": change.action,
                                 "detail": change.detail, "prev": prev}
        entry["hash"] = head = _chain(prev, dict(entry))
        inc = replace(inc, timeline_seq=seq, timeline_head=head, updated_at=at)
        digest = inc.frozen_plan.digest
        if digest not in self._plans_written:  # content-addressed: sent until one write committed it
            pipe.set(plan_key(digest), plan_json(inc))
        pipe.set(key, compact_json(inc))
        indexes.write(pipe, before, inc)
        pipe.rpush(f"{P}timeline:{inc.id}", json.dumps(entry, ensure_ascii=False))
        if change.alerts:
            pipe.hset(f"{key}:alerts", mapping={fp: json.dumps(a.to_json(), ensure_ascii=False)
                                                for fp, a in change.alerts.items()})
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
        clock = inc.clock(change.detail.get("clock", ""))
        if change.events:
            headline, ref = inc.headline(), clock_ref(clock) if clock else None
            for kind in change.events:
                publish(pipe, IncidentEvent.about(kind, headline, iso(at), change.actor, change.detail,
                                                  ref if kind in ("reminder", "overdue") else None))
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
