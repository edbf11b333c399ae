"""Incident events: what the router tells paging, through a Redis stream.

The router appends an event in the same transaction as the incident change it
describes; paging reads the stream as a consumer group and acknowledges an event only
after it has recorded what it will send. A restart or a second replica loses nothing
and takes nothing twice (pending entries are reclaimed after ``idle`` seconds).

Kinds: ``opened``, ``upgraded`` (level raised or set by a person), ``acknowledged``,
``resolved``, ``reminder`` (a report is due soon), ``overdue`` (a report is late),
``recovered`` (all alerts ended), ``unheld`` (a maintenance window that held the
incident's pages is over, or a site outside it joined: paging resumes).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import redis.asyncio as aioredis
import redis.exceptions

STREAM = "hallmon:events"
KINDS = ("opened", "upgraded", "acknowledged", "resolved", "reminder", "overdue", "recovered", "unheld")


@dataclass(frozen=True)
class IncidentEvent:
    kind: str
    incident: dict[str, Any]  # the incident JSON (DESIGN.md) as of this event
    at: str  # RFC 3339
    clock: dict[str, Any] | None = None  # for reminder / overdue
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")

    def fields(self) -> dict[str, str]:
        return {"kind": self.kind, "at": self.at,
                "body": json.dumps({"incident": self.incident, "clock": self.clock, "extra": self.extra},
                                   ensure_ascii=False)}

    @classmethod
    def from_fields(cls, raw: dict) -> "IncidentEvent":
        flat = {_s(k): _s(v) for k, v in raw.items()}
        body = json.loads(flat["body"])
        return cls(kind=flat["kind"], at=flat["at"], incident=body["incident"], clock=body.get("clock"),
                   extra=body.get("extra") or {})


def publish(pipe: aioredis.client.Pipeline, event: IncidentEvent, stream: str = STREAM) -> None:
    """Queue the event on the caller's transaction (MULTI) so it commits with the change."""
    pipe.xadd(stream, event.fields(), maxlen=1_000_000, approximate=True)


class EventConsumer:
    def __init__(self, client: aioredis.Redis, group: str, consumer: str, stream: str = STREAM,
                 idle: float = 30.0):
        self.client, self.group, self.consumer, self.stream = client, group, consumer, stream
        self.idle_ms = int(idle * 1000)

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    async def read(self, block_ms: int = 1000, count: int = 100) -> list[tuple[str, IncidentEvent]]:
        """New events, and events another consumer claimed but never acknowledged."""
        out: list[tuple[str, IncidentEvent]] = []
        claimed = await self.client.xautoclaim(self.stream, self.group, self.consumer,
                                               min_idle_time=self.idle_ms, start_id="0-0", count=count)
        for entry_id, raw in claimed[1]:
            if raw:
                out.append((_s(entry_id), IncidentEvent.from_fields(raw)))
        if out:
            return out
        resp = await self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                            count=count, block=block_ms)
        for _stream, entries in resp or []:
            for entry_id, raw in entries:
                out.append((_s(entry_id), IncidentEvent.from_fields(raw)))
        return out

    async def ack(self, entry_id: str) -> None:
        await self.client.xack(self.stream, self.group, entry_id)

    async def __aiter__(self) -> AsyncIterator[tuple[str, IncidentEvent]]:  # pragma: no cover
        await self.ensure_group()
        while True:
            for item in await self.read():
                yield item


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value
