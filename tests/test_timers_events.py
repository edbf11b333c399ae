"""Durable timers and the incident event stream against a real redis-server."""
import asyncio
import time

import redis.asyncio as aioredis

from monitor.durable.events import EventConsumer, IncidentEvent, publish
from monitor.durable.timers import Timers


async def test_due_timers_are_claimed_once_across_two_replicas(redis_url):
    a = aioredis.from_url(redis_url)
    b = aioredis.from_url(redis_url)
    ta, tb = Timers(a, "t"), Timers(b, "t")
    now = time.time()
    for i in range(200):
        await ta.schedule(f"c{i}", now - 1, {"i": i})
    await ta.schedule("later", now + 3600, {})
    got_a, got_b = await asyncio.gather(ta.claim(now), tb.claim(now))
    ids = [t for t, _ in got_a] + [t for t, _ in got_b]
    assert sorted(ids) == sorted(f"c{i}" for i in range(200))  # each once, "later" not yet
    assert {p["i"] for _, p in got_a + got_b} == set(range(200))
    # claimed but not done: invisible until the lease runs out, then back
    assert await tb.claim(now) == []
    assert len(await tb.claim(now + ta.lease + 1)) == 200
    for tid in ids:
        await ta.done(tid)
    assert await ta.pending() == 1
    await a.aclose()
    await b.aclose()


async def test_done_in_the_callers_transaction_commits_with_its_effect(redis_url):
    r = aioredis.from_url(redis_url)
    timers = Timers(r, "t2")
    await timers.schedule("x", time.time() - 1, {"v": 1})
    [(tid, payload)] = await timers.claim()
    pipe = r.pipeline(transaction=True)
    pipe.set("effect", "fired")
    await timers.done(tid, pipe)
    await pipe.execute()
    assert await r.get("effect") == b"fired"
    assert await timers.pending() == 0
    await r.aclose()


async def test_events_reach_a_consumer_group_once_and_unacked_ones_are_reclaimed(redis_url):
    r = aioredis.from_url(redis_url)
    c1 = EventConsumer(r, "paging", "c1", idle=0.2)
    c2 = EventConsumer(r, "paging", "c2", idle=0.2)
    await c1.ensure_group()
    pipe = r.pipeline(transaction=True)
    publish(pipe, IncidentEvent("opened", {"id": "INC-1", "level": 2}, "2026-11-25T08:00:00+08:00"))
    await pipe.execute()
    first = await c1.read(block_ms=100)
    assert [e.incident["id"] for _, e in first] == ["INC-1"]
    assert await c2.read(block_ms=100) == []  # delivered to c1 only
    await asyncio.sleep(0.3)  # c1 "died" without ack: c2 takes it over
    again = await c2.read(block_ms=100)
    assert [e.kind for _, e in again] == ["opened"]
    await c2.ack(again[0][0])
    await asyncio.sleep(0.3)
    assert await c1.read(block_ms=100) == []
    await r.aclose()


def test_unknown_event_kind_is_refused():
    import pytest

    with pytest.raises(ValueError):
        IncidentEvent("exploded", {}, "2026-11-25T08:00:00+08:00")
