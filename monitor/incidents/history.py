"""The history's stored form brought up to date: 0.6 documents compacted and indexed.

0.6 kept each incident's frozen plan (~15 KB of JSON) inside its document and had no
secondary indexes. ``migrate_history`` walks every incident once, in batches, and in one
transaction per batch writes each frozen plan once under ``plan:{digest}``, rewrites a
document that still carries its own copy without it, and writes the index entries
(``indexes``). Each batch commits whole or not at all, and each step is idempotent
(content-addressed plans, ZADD), so a SIGKILL midway leaves a history that is read
correctly as it is (a document with its own plan is read as it always was) and a second
run finishes the work. When it has walked everything it sets ``history:form`` to
``FORM``; a start that finds it there reads nothing (``force`` walks again: ``hallmon
migrate`` does, and then also repacks the resolved documents 0.7 first deflated without
the dictionary of ``packing``; a start leaves those as they are, read as they are). Index
entries of incidents whose documents expired (``store.RETENTION``) are dropped on the way.
"""
from __future__ import annotations

import json

import redis.asyncio as aioredis
import redis.exceptions
import structlog

from monitor.incidents import indexes, packing
from monitor.incidents.store import P, compact_json, decode, plan_json, plan_key

__all__ = ["FORM", "MARK", "migrate_history"]

FORM = 1  # the history's form: documents without a plan copy, indexes written
MARK = f"{P}history:form"

log = structlog.get_logger("hallmon.history")


async def migrate_history(client: aioredis.Redis, batch: int = 500, force: bool = False) -> int:
    """Compact and index every stored incident; returns how many documents it changed
    (compacted, or an index entry written that was missing). Nothing is read when the
    history is in ``FORM`` already, unless ``force``."""
    mark = await client.get(MARK)
    if not force and mark is not None and int(mark) >= FORM:
        return 0
    changed = start = 0
    expired: list[str] = []
    while ids := [_text(i) for i in await client.zrange(indexes.ALL, start, start + batch - 1)]:
        n, gone = await _batch(client, ids, repack=force)
        changed, start = changed + n, start + len(ids)
        expired += gone
    if expired:
        await _forget(client, expired)
    await client.set(MARK, FORM)
    if changed or expired:
        log.info("history_migrated", incidents=start, changed=changed, expired=len(expired), form=FORM)
    return changed


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _batch(client: aioredis.Redis, ids: list[str], repack: bool = False) -> tuple[int, list[str]]:
    """One batch in one transaction: (documents changed, ids whose document expired)."""
    keys = [f"{P}incident:{i}" for i in ids]
    for _ in range(20):
        async with client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(*keys)
                raws = await pipe.mget(keys)
                incs = await decode(pipe, raws)
                pipe.multi()
                plans: set[str] = set()
                spans: list[tuple[bool, int, int]] = []  # per document: compacted, its ZADD replies' span
                gone = []
                for incident_id, raw, inc in zip(ids, raws, incs):
                    if inc is None or raw is None:
                        gone.append(incident_id)
                        continue
                    stored = json.loads(raw)
                    own_plan = "frozen_plan" in stored
                    if own_plan and inc.frozen_plan.digest not in plans:
                        pipe.set(plan_key(inc.frozen_plan.digest), plan_json(inc))
                        plans.add(inc.frozen_plan.digest)
                    rewrite = own_plan or (repack and "z" in stored and stored.get("d") != packing.DICTIONARY)
                    if rewrite:
                        pipe.set(f"{P}incident:{incident_id}", compact_json(inc), keepttl=True)
                    zadds = indexes.write(pipe, None, inc)
                    end = len(pipe.command_stack)
                    spans.append((rewrite, end - zadds, end))
                replies = await pipe.execute()
                return sum(own or any(replies[a:b]) for own, a, b in spans), gone
            except redis.exceptions.WatchError:
                continue
    raise RuntimeError("history migration: the incidents kept changing under it; retry")


async def _forget(client: aioredis.Redis, ids: list[str]) -> None:
    """Index entries of incidents whose documents expired (``store.RETENTION``) dropped
    from every index."""
    keys = [indexes.ALL, *[k async for k in client.scan_iter(match=f"{indexes.IDX}*", count=1000)]]
    for i in range(0, len(ids), 1000):
        async with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrem(key, *ids[i:i + 1000])
            await pipe.execute()
