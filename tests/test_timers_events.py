"""Durable timers and the incident event stream against a real redis-server."""
import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.clock import ManualClock
from monitor.durable.events import DEAD, KINDS, STREAM, BadEvent, EventConsumer, IncidentEvent, publish, trim_read
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


INCIDENT = {"id": "INC-1", "status": "open", "level": 2, "level_name": "二级", "plan": "shenzhen-customs",
            "category": "pos", "system": "payment", "sites": ["u2a"], "units": ["u2"], "faults": ["pos.link_down"],
            "detected_at": "2026-11-25T08:00:00+08:00", "decision": {"rule": "r", "facts": {"x": "y" * 500}},
            "clocks": [{"id": "phone-report", "title": "电话报告", "title_en": "Phone report", "status": "pending",
                        "due_at": "2026-11-25T08:15:00+08:00", "seq": 1, "audience": {"to": ["单位领导"]},
                        "source": "Shenzhen 4.3.3"}]}


async def publish_one(r, kind="opened", incident=INCIDENT, **kw):
    pipe = r.pipeline(transaction=True)
    publish(pipe, IncidentEvent.of(kind, incident, "2026-11-25T08:00:00+08:00", **kw))
    await pipe.execute()


async def test_events_reach_a_consumer_group_once_and_unacked_ones_are_reclaimed(redis_url):
    r = aioredis.from_url(redis_url)
    c1 = EventConsumer(r, "paging", "c1", idle=0.2)
    c2 = EventConsumer(r, "paging", "c2", idle=0.2)
    await c1.ensure_group()
    await publish_one(r)
    first = await c1.read(block_ms=100)
    assert [e.id for _, e in first] == ["INC-1"]
    assert await c2.read(block_ms=100) == []  # delivered to c1 only
    await asyncio.sleep(0.3)  # c1 "died" without ack: c2 takes it over
    again = await c2.read(block_ms=100)
    assert [e.kind for _, e in again] == ["opened"]
    await c2.ack(again[0][0])
    await asyncio.sleep(0.3)
    assert await c1.read(block_ms=100) == []
    await r.aclose()


async def test_an_event_carries_the_id_the_change_and_a_headline_not_the_incident(redis_url):
    r = aioredis.from_url(redis_url)
    await publish_one(r, "reminder", actor="clock", detail={"clock": "phone-report", "due_at": "x"})
    [(_, fields)] = await r.xrange(STREAM)
    assert fields[b"incident"] == b"INC-1" and fields[b"kind"] == b"reminder"
    body = json.loads(fields[b"body"])
    assert body["actor"] == "clock" and body["clock"]["id"] == "phone-report" and body["clock"]["to"] == ["单位领导"]
    assert body["headline"]["next_clock"]["title_en"] == "Phone report"
    assert "decision" not in body["headline"] and "clocks" not in body["headline"]
    assert len(fields[b"body"]) < 700 < len(json.dumps(INCIDENT, ensure_ascii=False).encode())
    consumer = EventConsumer(r, "g", "c")
    await consumer.ensure_group()
    [(_, event)] = await consumer.read(block_ms=100)
    assert event == IncidentEvent.of("reminder", INCIDENT, "2026-11-25T08:00:00+08:00", actor="clock",
                                     detail={"clock": "phone-report", "due_at": "x"})  # one JSON round trip
    await r.aclose()


async def test_the_stream_is_trimmed_to_what_every_group_has_read(redis_url):
    r = aioredis.from_url(redis_url, decode_responses=True)
    fast, slow = EventConsumer(r, "paging", "a"), EventConsumer(r, "console", "b")
    await fast.ensure_group()
    await slow.ensure_group()
    for _ in range(10):
        await publish_one(r)
    for entry_id, _ in await fast.read(block_ms=100):
        await fast.ack(entry_id)
    assert await trim_read(r) == 0 and await r.xlen(STREAM) == 10  # "console" has read nothing yet
    got = await slow.read(block_ms=100, count=6)
    for entry_id, _ in got[:4]:
        await slow.ack(entry_id)
    assert await trim_read(r) == 4 and await r.xlen(STREAM) == 6  # from its oldest unacknowledged on
    for entry_id, _ in got[4:] + await slow.read(block_ms=100):
        await slow.ack(entry_id)
    await trim_read(r)
    assert await r.xlen(STREAM) <= 1  # at most the last one read is kept
    await r.aclose()


async def test_an_entry_that_is_no_event_is_read_as_a_bad_event_and_can_be_dead_lettered(redis_url):
    r = aioredis.from_url(redis_url, decode_responses=True)
    consumer = EventConsumer(r, "paging", "c")
    await consumer.ensure_group()
    await r.xadd(STREAM, {"kind": "opened", "incident": "INC-9", "at": "2026-11-25T08:00:00+08:00", "body": "{no"})
    [(entry_id, bad)] = await consumer.read(block_ms=100)
    assert isinstance(bad, BadEvent)
    assert await consumer.failed(entry_id) == 1
    await consumer.dead_letter(entry_id, str(bad))
    [(_, dead)] = await r.xrange(DEAD)
    assert dead["incident"] == "INC-9" and dead["entry"] == entry_id and "JSONDecodeError" in dead["error"]
    assert (await r.xpending(STREAM, "paging"))["pending"] == 0
    assert await r.hlen(consumer.attempts_key) == 0
    await r.aclose()


def test_unknown_event_kinds_and_times_without_offset_are_refused():
    with pytest.raises(ValueError):
        IncidentEvent.of("exploded", INCIDENT, "2026-11-25T08:00:00+08:00")
    with pytest.raises(ValueError):
        IncidentEvent.of("opened", {**INCIDENT, "detected_at": "2026-11-25T08:00:00"}, "2026-11-25T08:00:00+08:00")


async def test_timers_run_on_an_injected_clock(redis_url):
    r = aioredis.from_url(redis_url)
    clock = ManualClock()
    timers = Timers(r, "t3", clock=clock)
    await timers.schedule("wait", clock.time() + 300, {"v": 1})
    fired: list[str] = []

    async def handler(timer_id, payload, t):
        fired.append(timer_id)
        await t.done(timer_id)
    task = asyncio.create_task(timers.run(handler))
    for _ in range(3):
        await clock.advance(99)
        await asyncio.sleep(0.05)  # the claim's round trip to Redis
    assert fired == []  # 300 s not yet over: 0.2 s polls are clock time too
    await clock.advance(3)
    for _ in range(50):
        if fired:
            break
        await asyncio.sleep(0.01)
    assert fired == ["wait"]
    task.cancel()
    await r.aclose()


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=8))])).map(datetime.isoformat)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(KINDS), inc_id=TEXT.filter(bool), level=st.integers(1, 3), name=TEXT, sites=st.lists(TEXT),
       faults=st.lists(TEXT), detected=TIMES, at=TIMES, actor=TEXT, detail=st.dictionaries(TEXT, TEXT | st.integers()),
       drill=st.booleans(), clock_due=st.none() | TIMES)
def test_an_event_survives_the_stream_round_trip(kind, inc_id, level, name, sites, faults, detected, at, actor,
                                                 detail, drill, clock_due):
    clocks = [{"id": "c1", "title": name, "due_at": clock_due, "status": "pending", "seq": 2,
               "audience": {"to": sites}}] if clock_due else []
    inc = {"id": inc_id, "level": level, "level_name": name, "category": "pos", "sites": sites, "units": sites,
           "faults": faults, "detected_at": detected, "drill": drill, "clocks": clocks}
    event = IncidentEvent.of(kind, inc, at, actor, {**detail, "clock": "c1"})
    raw = {k.encode(): v.encode() for k, v in event.fields().items()}  # as redis-py gives them back
    assert IncidentEvent.from_fields(raw) == event
    assert (event.clock is not None) == (kind in ("reminder", "overdue") and bool(clock_due))


async def test_a_cancelled_timer_loop_stops_even_when_redis_py_loses_the_cancellation(redis_url):
    """redis-py's asyncio client (8.1) often returns a command's result after its task was
    cancelled; a loop going on from there would never stop (a shutdown that hangs)."""
    r = aioredis.from_url(redis_url)
    timers = Timers(r, "t4", poll=0.001)

    async def handler(timer_id, payload, t):
        await t.done(timer_id)
    lost = 0
    for i in range(150):
        await timers.schedule(f"x{i}", time.time() - 1, {})
        task = asyncio.create_task(timers.run(handler))
        for _ in range(i % 15):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)
        lost += not done
        if not done:
            task.cancel()
    assert lost == 0
    await r.aclose()
