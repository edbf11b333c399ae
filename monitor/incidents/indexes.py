"""Secondary indexes of the incidents, so that a search or a month's summary reads only
what it returns (issue 17, item 5).

Each index is a ZSET of incident ids scored by the incident's detection time, written in
the incident's own MULTI (``IncidentStore._write``), so an incident and its index entries
commit together or not at all:

``idx:status:{open|acknowledged|resolved}``, ``idx:level:{1|2|3}``, ``idx:category:{c}``,
``idx:site:{site}``, ``idx:unit:{unit}``, ``idx:drill``. A month (or any ``since``) is a
score range of any of them, so there is no index per month: the month's summary reads
``idx:level:3`` and ``idx:drill`` between the month's first instant and the next one's.

A search with several filters intersects their indexes in one transaction
(``ZINTERSTORE`` into a key that the same transaction deletes): Redis walks the smallest
index, so one site's closed incidents cost that site's entries, whatever the history.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Collection

import redis.asyncio as aioredis

from monitor.incidents.records import Incident

IDX = "hallmon:idx:"
ALL = "hallmon:incidents"  # every incident by detection time (the store's own, older index)


def keys_of(inc: Incident) -> set[str]:
    """The index keys an incident belongs to, as it is now."""
    keys = {f"{IDX}status:{inc.status}", f"{IDX}level:{inc.level}", f"{IDX}category:{inc.category}"}
    keys.update(f"{IDX}site:{s}" for s in inc.sites)
    keys.update(f"{IDX}unit:{u}" for u in inc.units)
    if inc.drill:
        keys.add(f"{IDX}drill")
    return keys


def write(pipe: aioredis.client.Pipeline, before: Incident | None, after: Incident) -> int:
    """Queue on the incident's transaction: the index entries ``before`` had and ``after``
    has not are removed, every entry ``after`` has is (re)written with its detection
    time. Returns how many commands it queued whose replies are ZADD counts (the last
    ones queued), for a caller that wants to know whether an entry was missing."""
    now = keys_of(after)
    for key in (keys_of(before) - now) if before is not None else ():
        pipe.zrem(key, after.id)
    score = after.detected_at.timestamp()
    pipe.zadd(ALL, {after.id: score})
    for key in sorted(now):
        pipe.zadd(key, {after.id: score})
    return len(now) + 1


@dataclass(frozen=True, slots=True)
class Search:
    """What ``GET /api/v1/incidents`` filters on; ``units_any``: the units a unit-limited
    token sees (an incident in any of them)."""

    status: str | None = None
    level: int | None = None
    site: str | None = None
    unit: str | None = None
    category: str | None = None
    drill: bool | None = None  # True: drills only (False is not indexed: filter after)
    units_any: Collection[str] | None = None
    since: datetime | None = None
    until: datetime | None = None  # exclusive

    def keys(self) -> list[str]:
        keys = []
        if self.status is not None:
            keys.append(f"{IDX}status:{self.status}")
        if self.level is not None:
            keys.append(f"{IDX}level:{self.level}")
        if self.site is not None:
            keys.append(f"{IDX}site:{self.site}")
        if self.unit is not None:
            keys.append(f"{IDX}unit:{self.unit}")
        if self.category is not None:
            keys.append(f"{IDX}category:{self.category}")
        if self.drill:
            keys.append(f"{IDX}drill")
        return keys


async def ids(client: aioredis.Redis, search: Search, limit: int, offset: int = 0,
              oldest_first: bool = False) -> list[str]:
    """The ids of the incidents matching ``search``, newest first (or oldest), one page."""
    lo: float | str = search.since.timestamp() if search.since else "-inf"
    hi: float | str = f"({search.until.timestamp()}" if search.until else "+inf"
    keys = search.keys()
    async with client.pipeline(transaction=True) as pipe:
        scratch = []
        if search.units_any is not None:
            if not search.units_any:
                return []
            union = f"{IDX}tmp:{uuid.uuid4().hex}"
            pipe.zunionstore(union, [f"{IDX}unit:{u}" for u in sorted(search.units_any)], aggregate="MAX")
            keys.append(union)
            scratch.append(union)
        if not keys:
            source = ALL
        elif len(keys) == 1:
            source = keys[0]
        else:
            source = f"{IDX}tmp:{uuid.uuid4().hex}"
            pipe.zinterstore(source, keys, aggregate="MAX")  # every index has the same score
            scratch.append(source)
        if oldest_first:
            pipe.zrangebyscore(source, lo, hi, start=offset, num=limit)
        else:
            pipe.zrevrangebyscore(source, hi, lo, start=offset, num=limit)
        if scratch:
            pipe.delete(*scratch)
        replies = await pipe.execute()
    page = replies[-2] if scratch else replies[-1]
    return [v.decode() if isinstance(v, bytes) else v for v in page]
