"""Messages waiting to go out, in Redis, and the exactly-once marks that keep each one
to a single send.

The outbox: every message to send is a ``Job`` (who, which channel, what) written in
the same transaction as the escalation step that decided it, as a durable timer due
now (``durable/timers.py``: claimed with a lease, so one replica takes it at a time, and
a process that dies holding it leaves it to be taken again). A job that failed is moved
to its next attempt's time; one sent, cancelled or failed for good is removed.

The marks (``hallmon:paging:sent:{key}``): before a message goes out its mark is set
to ``sending:{t}``; after, to ``sent:…``, ``failed:…`` or ``cancelled:…`` (final), or
``retry:{n}`` (to be taken again). A job whose mark is final is dropped; one left
``sending`` longer than ``paging.resend_after`` by a process that died mid-send is sent
again, once (``take``, one Lua script: two replicas never both take it).
"""
from __future__ import annotations

from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict

from monitor.core.clock import Clock
from monitor.durable import versions
from monitor.durable.events import ClockRef, Headline
from monitor.durable.timers import Timers

P = "hallmon:paging:"
KEEP = 30 * 86400

# 1: taken; 0: on the wire from another process; 2: final (sent, failed, cancelled)
_TAKE = """
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 6) ~= 'retry:' then
  local ts = string.match(cur, '^sending:([%d.]+)$')
  if not ts then return 2 end
  if tonumber(ARGV[1]) - tonumber(ts) < tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], 'sending:' .. ARGV[1], 'EX', ARGV[3])
return 1
"""
TAKEN, BUSY, FINAL = 1, 0, 2

Kind = Literal["page", "reminder", "overdue", "resolved", "shift"]


class Job(BaseModel):
    """One message for one recipient on one channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = versions.PAGING  # 0.6 stored none (v1)
    key: str  # identifies the message: its mark, its idempotency key
    kind: Kind
    channel: str
    person: str | None = None  # None: a channel notified as such (a group robot)
    incident: Headline | None = None  # None for a hand-off report
    step: int = 0
    clock: ClockRef | None = None  # reminder, overdue
    detail: dict[str, Any] = {}  # resolved: by, result
    report: dict[str, Any] | None = None  # shift: the hand-off report as data
    created: float
    attempts: int = 0

    @property
    def fallbacks(self) -> int:
        return self.key.count(">")


class Marks:
    def __init__(self, client: aioredis.Redis, clock: Clock, resend_after: float):
        self.r = client
        self.clock = clock
        self.resend_after = resend_after
        self._take = client.register_script(_TAKE)

    @staticmethod
    def key(job_key: str) -> str:
        return f"{P}sent:{job_key}"

    async def take(self, job_key: str) -> int:
        """``TAKEN`` when this process is to send the message now, ``BUSY`` when another
        is sending it, ``FINAL`` when it was sent (or failed or was cancelled) for good."""
        return int(await self._take(keys=[self.key(job_key)],
                                    args=[f"{self.clock.time():.3f}", self.resend_after, KEEP]))

    async def get(self, job_key: str) -> str | None:
        value = await self.r.get(self.key(job_key))
        return value.decode() if isinstance(value, bytes) else value

    def set(self, pipe: aioredis.client.Pipeline, job_key: str, value: str) -> None:
        pipe.set(self.key(job_key), value, ex=KEEP)


class Outbox:
    def __init__(self, client: aioredis.Redis, clock: Clock, lease: float):
        self.r = client
        self.clock = clock
        self.timers = Timers(client, f"{P}outbox", lease=lease, poll=0.2, clock=clock)

    async def put(self, pipe: aioredis.client.Pipeline, job: Job, due: float | None = None) -> None:
        """Queue ``job`` on the caller's transaction; a job queued already stays as it is
        (a redelivered event or a second replica walking the same step adds nothing)."""
        await self.timers.schedule(job.key, self.clock.time() if due is None else due,
                                   job.model_dump(mode="json", exclude_none=True), pipe=pipe, nx=True)

    async def again(self, pipe: aioredis.client.Pipeline, job: Job, due: float) -> None:
        """Move ``job`` (with its attempt count) to its next attempt."""
        await self.timers.schedule(job.key, due, job.model_dump(mode="json", exclude_none=True), pipe=pipe)

    async def done(self, pipe: aioredis.client.Pipeline, job: Job) -> None:
        await self.timers.done(job.key, pipe)

    async def pending(self) -> int:
        return await self.timers.pending()

    def wake(self) -> None:
        self.timers.wake()
