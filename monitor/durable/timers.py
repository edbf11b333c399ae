"""Durable timers in Redis, shared by replicas, each fired by exactly one of them.

A timer is an id in a sorted set scored by its due time, with a JSON payload beside it.
``claim`` is one Lua script: it takes the due ids and pushes their score out by a
lease, so no other replica takes them while the handler runs. The handler finishes
by calling ``done`` — ideally inside the same MULTI as its own effect (pass the
pipeline), so that the effect and the removal commit together: a process killed before
that commit leaves the timer to fire again after the lease, one killed after it leaves
nothing to fire. Pending timers live only in Redis, so a restarted process picks them
up on its first poll. Time comes from a ``Clock`` (tests move it on); ``wake`` makes
the loop poll at once (after this process scheduled something due now).

Keys: ``{prefix}:due`` (ZSET id → due unix time), ``{prefix}:data`` (HASH id → JSON).
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

import redis.asyncio as aioredis
import structlog

from monitor.core.clock import SYSTEM, Clock
from monitor.core.errors import StoreError
from monitor.core.outage import Outage
from monitor.core.supervise import check_cancelled
from monitor.durable import versions

log = structlog.get_logger("hallmon.timers")

_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or '{}'
end
return out
"""

Handler = Callable[[str, dict[str, Any], "Timers"], Awaitable[None]]


class Timers:
    def __init__(self, client: aioredis.Redis, prefix: str, lease: float = 10.0, poll: float = 0.2,
                 clock: Clock = SYSTEM):
        self.client = client
        self.due_key = f"{prefix}:due"
        self.data_key = f"{prefix}:data"
        self.lease = lease
        self.poll = poll
        self.clock = clock
        self._claim = client.register_script(_CLAIM)
        self._wake = asyncio.Event()

    async def schedule(self, timer_id: str, due: float, payload: dict[str, Any],
                       pipe: aioredis.client.Pipeline | None = None, nx: bool = False) -> None:
        """Create or move a timer. Pass ``pipe`` to commit with the caller's own writes;
        with ``nx`` a timer that exists already is left as it is."""
        target = pipe if pipe is not None else self.client.pipeline(transaction=True)
        body = json.dumps({**payload, "v": versions.TIMER}, ensure_ascii=False)
        if nx:
            target.hsetnx(self.data_key, timer_id, body)
            target.zadd(self.due_key, {timer_id: due}, nx=True)
        else:
            target.hset(self.data_key, timer_id, body)
            target.zadd(self.due_key, {timer_id: due})
        if pipe is None:
            await target.execute()

    async def cancel(self, timer_id: str, pipe: aioredis.client.Pipeline | None = None) -> None:
        await self.done(timer_id, pipe)

    async def done(self, timer_id: str, pipe: aioredis.client.Pipeline | None = None) -> None:
        target = pipe if pipe is not None else self.client.pipeline(transaction=True)
        target.zrem(self.due_key, timer_id)
        target.hdel(self.data_key, timer_id)
        if pipe is None:
            await target.execute()

    async def payload(self, timer_id: str) -> dict[str, Any] | None:
        raw = await self.client.hget(self.data_key, timer_id)
        return json.loads(raw) if raw else None

    async def due_at(self, timer_id: str) -> float | None:
        return await self.client.zscore(self.due_key, timer_id)

    async def pending(self) -> int:
        return await self.client.zcard(self.due_key)

    async def claim(self, now: float | None = None, limit: int = 1000) -> list[tuple[str, dict]]:
        now = self.clock.time() if now is None else now
        flat = await self._claim(keys=[self.due_key, self.data_key], args=[now, now + self.lease, limit])
        pairs = []
        for i in range(0, len(flat), 2):
            tid = flat[i].decode() if isinstance(flat[i], bytes) else flat[i]
            raw = flat[i + 1].decode() if isinstance(flat[i + 1], bytes) else flat[i + 1]
            pairs.append((tid, json.loads(raw)))
        return pairs

    async def run(self, handler: Handler) -> None:
        """Fire due timers until cancelled. The handler must call ``done`` (in its own
        transaction); a handler that raises leaves the timer to be retried after the lease."""
        redis = Outage("timers_redis", log, key=self.due_key)
        while True:
            check_cancelled()
            try:
                batch = await self.claim()
                redis.ok()
            except StoreError as err:
                redis.failing(err)
                await self.clock.sleep(1.0)
                continue
            for timer_id, payload in batch:
                try:
                    await handler(timer_id, payload, self)
                except Exception:
                    log.exception("timer_handler_failed", timer=timer_id)
            if len(batch) < 1000:
                await self._pause()

    def wake(self) -> None:
        """Poll now instead of at the end of the current pause."""
        self._wake.set()

    async def _pause(self) -> None:
        if not self._wake.is_set():
            sleeper = asyncio.ensure_future(self.clock.sleep(self.poll))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
        self._wake.clear()
