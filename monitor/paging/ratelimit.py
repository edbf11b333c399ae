"""Rate limits per channel (DingTalk: 20 messages a minute per robot), with the messages
that did not fit held for one digest instead of dropped.

``SharedWindow`` counts in Redis, so replicas share one robot's limit, and holds the
messages in a Redis list, so a digest waiting for its turn survives a restart; one
replica at a time flushes (a lock with expiry).
"""
from __future__ import annotations

import json
import os
import uuid
from typing import Any

import redis.asyncio as aioredis

from monitor.core.clock import SYSTEM, Clock

# sliding window: drop sends older than the window, admit if below the limit
_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000) + 1000)
  return 1
end
return 0
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SharedWindow:
    def __init__(self, client: aioredis.Redis, channel_id: str, messages: int, per: float,
                 prefix: str = "hallmon:paging", clock: Clock = SYSTEM):
        self.r, self.messages, self.per, self.clock = client, messages, per, clock
        self.sent_key = f"{prefix}:rate:{channel_id}"
        self.held_key = f"{prefix}:held:{channel_id}"
        self.lock_key = f"{prefix}:flushing:{channel_id}"
        self._admit = client.register_script(_ADMIT)
        self._unlock = client.register_script(_UNLOCK)
        self._token = f"{os.getpid()}-{uuid.uuid4().hex}"

    async def admit(self) -> bool:
        now = self.clock.time()
        return bool(await self._admit(keys=[self.sent_key],
                                      args=[f"{now:.6f}", self.per, self.messages, f"{now:.6f}-{uuid.uuid4().hex}"]))

    async def wait(self) -> float:
        oldest = await self.r.zrange(self.sent_key, 0, 0, withscores=True)
        return max(0.0, self.per - (self.clock.time() - float(oldest[0][1]))) if oldest else 0.0

    async def hold(self, item: dict[str, Any]) -> None:
        await self.r.rpush(self.held_key, json.dumps(item, ensure_ascii=False))

    async def has_held(self) -> bool:
        return bool(await self.r.llen(self.held_key))

    async def lock(self) -> bool:
        return bool(await self.r.set(self.lock_key, self._token, nx=True, px=int(self.per * 1000) + 30_000))

    async def unlock(self) -> None:
        await self._unlock(keys=[self.lock_key], args=[self._token])

    async def take(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self.r.lrange(self.held_key, 0, 999)]

    async def taken(self, n: int) -> None:
        await self.r.ltrim(self.held_key, n, -1)
