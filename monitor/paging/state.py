"""An incident's paging state: the escalation policy frozen into it when it opened (an
upgrade freezes the new level's policy as a new generation), how far the walk got, who
was paged, and whether a person acknowledged or resolved it.

One JSON round trip (``to_json`` / ``from_json``), stored at ``hallmon:paging:{id}``
and changed only under WATCH (``PagingStates.update``), so an acknowledgement recorded
meanwhile, by an event or by another replica, is never overwritten by a step in flight.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

import redis.asyncio as aioredis
import redis.exceptions
from pydantic import BaseModel, ConfigDict, model_validator

from monitor.config.paging import PagingConfig, Policy
from monitor.durable import versions
from monitor.durable.events import Headline

P = "hallmon:paging:"
KEEP = 30 * 86400


class PagingState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = versions.PAGING  # 0.5 and 0.6 stored none (v1): see _from_0_5
    incident: Headline
    gen: int = 1  # bumped by every upgrade; a wait timer of an older generation does nothing
    policy: Policy | None = None  # frozen: a reload does not change an incident in flight
    step: int = 0  # the next step to walk; past 0 once a walk reached its first wait
    acked: bool = False
    resolved: bool = False
    paged: tuple[str, ...] = ()  # people paged, told when it is resolved
    last_notify: int = -1  # the last notify step walked (an overdue report goes one further)
    upgraded_at: str | None = None  # the upgrade frozen last (a redelivered one is skipped)

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> "PagingState":
        return cls.model_validate_json(raw)

    @model_validator(mode="before")
    @classmethod
    def _from_0_5(cls, data: Any) -> Any:
        """hallmon 0.5 stored the whole incident and plain-number waits."""
        if isinstance(data, dict) and isinstance(data.get("incident"), dict) and "clocks" in data["incident"]:
            data = {**data, "incident": Headline.of(data["incident"])}
            policy = data.get("policy")
            if isinstance(policy, dict):
                steps = [{k: (f"{v}s" if k == "wait" and isinstance(v, (int, float)) else v)
                          for k, v in step.items() if v is not None} for step in policy.get("steps", [])]
                data["policy"] = {**policy, "steps": steps}
        return data

    def notify_steps(self) -> list[int]:
        return [i for i, s in enumerate(self.policy.steps) if s.notify is not None] if self.policy else []

    @property
    def stopped(self) -> bool:
        """Escalation is over: acknowledged or resolved."""
        return self.acked or self.resolved


def select_policy(paging: PagingConfig, level: int, category: str) -> Policy | None:
    for policy in paging.policies:
        if level in policy.match.levels and (not policy.match.categories or category in policy.match.categories):
            return policy
    return None


def freeze(paging: PagingConfig, headline: Headline, gen: int = 1) -> PagingState:
    return PagingState(incident=headline, gen=gen, policy=select_policy(paging, headline.level, headline.category))


Also = Callable[[aioredis.client.Pipeline, PagingState], Awaitable[None]]


class PagingStates:
    def __init__(self, client: aioredis.Redis):
        self.r = client

    async def get(self, incident_id: str) -> PagingState | None:
        raw = await self.r.get(f"{P}{incident_id}")
        return PagingState.from_json(raw) if raw else None

    async def create(self, state: PagingState) -> PagingState:
        """Store a first state; if another replica stored one first, that one."""
        if await self.r.set(f"{P}{state.incident.id}", state.to_json(), nx=True, ex=KEEP):
            return state
        return await self.get(state.incident.id) or state

    async def update(self, incident_id: str, change: Callable[[PagingState], PagingState | None],
                     default: PagingState | None = None, also: Also | None = None) -> PagingState | None:
        """Read-modify-write under WATCH. ``change`` returns the new state (None: leave it
        as it is, queue nothing); ``also`` queues further writes (pages, a timer) on the
        same transaction. Without a stored state, ``default`` is changed (or None returned)."""
        key = f"{P}{incident_id}"
        async with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    state = PagingState.from_json(raw) if raw else default
                    new = change(state) if state is not None else None
                    if new is None:
                        await pipe.unwatch()
                        return state
                    pipe.multi()
                    pipe.set(key, new.to_json(), ex=KEEP)
                    if also is not None:
                        await also(pipe, new)
                    await pipe.execute()
                    return new
                except redis.exceptions.WatchError:
                    continue
