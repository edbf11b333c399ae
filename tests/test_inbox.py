"""The pager's inbox on a real Redis stream: an event that keeps failing goes to the
dead-letter stream after N tries, counted, and does not hold up its incident's later
events; an entry that is no event goes there at once; the stream is trimmed."""
import asyncio

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from monitor.core.clock import SYSTEM
from monitor.durable.events import DEAD, STREAM, EventConsumer, IncidentEvent, publish
from monitor.paging.inbox import Inbox
from tests.pagingkit import Harness, config, incident, paging_yaml
from tests.robots import Robots
from tests.routerkit import TOKENS


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)


async def wait_for(pred, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        value = pred()
        if await value if asyncio.iscoroutine(value) else value:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_a_failing_event_is_dead_lettered_after_n_tries_and_does_not_hold_up_later_ones(redis_url):
    r = aioredis.from_url(redis_url, decode_responses=True)
    handled: list[tuple[str, str]] = []

    async def handle(event: IncidentEvent) -> None:
        if event.id == "INC-P" and event.kind == "opened":
            raise RuntimeError("poison")  # a bug, or data this code cannot handle
        handled.append((event.id, event.kind))

    registry = CollectorRegistry()
    inbox = Inbox(EventConsumer(r, "paging", "c", idle=0.2), handle, lambda: 3, registry, SYSTEM, trim_every=0.1)
    task = asyncio.create_task(inbox.run())
    try:
        poison = incident("INC-P")
        async with r.pipeline(transaction=True) as pipe:
            for kind in ("opened", "acknowledged", "resolved"):
                publish(pipe, IncidentEvent.of(kind, poison, "2026-11-25T09:00:00+08:00"))
            publish(pipe, IncidentEvent.of("opened", incident("INC-Q"), "2026-11-25T09:00:00+08:00"))
            await pipe.execute()
        await wait_for(lambda: len(handled) == 3)
        assert [kind for inc, kind in handled if inc == "INC-P"] == ["acknowledged", "resolved"]  # in order, at once
        assert ("INC-Q", "opened") in handled
        assert await r.xlen(DEAD) == 0  # not yet: tried again first
        await wait_for(lambda: r.xlen(DEAD), timeout=5)
        [(_, dead)] = await r.xrange(DEAD)
        assert dead["incident"] == "INC-P" and dead["kind"] == "opened" and "RuntimeError: poison" in dead["error"]
        assert registry.get_sample_value("hallmon_paging_events_dead_lettered_total") == 1
        assert (await r.xpending(STREAM, "paging"))["pending"] == 0
        await wait_for(lambda: _at_most_one(r))  # every entry read and acknowledged: trimmed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await r.aclose()


async def _at_most_one(r) -> bool:
    return await r.xlen(STREAM) <= 1


async def test_an_entry_that_is_no_event_is_dead_lettered_at_once_and_paging_goes_on(redis_url):
    robots = await Robots().start()
    try:
        async with Harness(redis_url, config(redis_url, paging_yaml(robots.base, wait="5m"))) as h:
            await h.client.xadd(STREAM, {"kind": "opened", "incident": "INC-X", "at": "yesterday", "body": "{}"})
            await h.publish("opened", incident())
            await h.until(lambda: robots.received["webhook"])
            await h.until(lambda: h.metric("hallmon_paging_events_dead_lettered_total") == 1)
            [(_, dead)] = await h.client.xrange(DEAD)
            assert dead["incident"] == "INC-X" and "headline" in dead["error"]
    finally:
        await robots.stop()
