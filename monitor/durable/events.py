"""Incident events: what the router tells paging (and any other reader), through a
Redis stream.

The router appends an event in the same transaction as the incident change it
describes; paging reads the stream as a consumer group and acknowledges an event once
what it will send is recorded. A restart or a second replica loses nothing and takes
nothing twice (pending entries are reclaimed after ``idle`` seconds).

An event carries the incident's id, the change (``actor``, ``detail``, and the clock for
a reminder or an overdue report) and the incident's ``Headline``: the few fields a page
prints and a reader filters on (level, category, sites, units, faults, first seen, the
next report due). Not the whole incident: its decision trace and clocks stay in the
store (an event is ~0.6 KB where 0.5 put the 2.3 KB incident in every one).

The stream is trimmed to what every consumer group has read and acknowledged
(``trim_read``); ``MAXLEN`` is only a backstop for a stream nobody reads. An event a
consumer cannot handle after N tries goes to ``hallmon:events:dead`` (``dead_letter``).

Stream fields: ``kind``, ``incident`` (the id), ``at`` (RFC 3339), ``body`` (JSON:
``headline``, ``actor``, ``detail``, ``clock``).

Kinds: ``opened``, ``upgraded`` (level raised or set by a person), ``acknowledged``,
``resolved``, ``reminder`` (a report is due soon), ``overdue`` (a report is late),
``recovered`` (all alerts ended), ``unheld`` (a maintenance window that held the
incident's pages is over, or a site outside it joined: paging resumes).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal, Mapping

import redis.asyncio as aioredis
import redis.exceptions
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from monitor.durable import versions

STREAM = "hallmon:events"
DEAD = "hallmon:events:dead"
MAXLEN = 100_000  # a backstop: consumers trim what they have read (``trim_read``)
KINDS = ("opened", "upgraded", "acknowledged", "resolved", "reminder", "overdue", "recovered", "unheld")
Kind = Literal["opened", "upgraded", "acknowledged", "resolved", "reminder", "overdue", "recovered", "unheld"]


def _rfc3339(value: str) -> str:
    if datetime.fromisoformat(value).tzinfo is None:
        raise ValueError("expected a time with its offset")
    return value


RFC3339 = Annotated[str, AfterValidator(_rfc3339)]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ClockRef(Record):
    """A report clock as a page names it."""

    id: str
    title: str = ""
    title_en: str = ""
    due_at: RFC3339
    seq: int = 1
    to: tuple[str, ...] = ()  # the audience

    @classmethod
    def of(cls, clock: Mapping[str, Any]) -> "ClockRef":
        return cls(id=clock["id"], title=clock.get("title") or clock["id"],
                   title_en=clock.get("title_en") or clock.get("title") or clock["id"], due_at=clock["due_at"],
                   seq=clock.get("seq", 1), to=tuple((clock.get("audience") or {}).get("to") or ()))


class Headline(Record):
    """What a page prints and a reader filters on, as of the event."""

    id: str
    status: str = "open"
    level: int
    level_name: str = ""
    plan: str = ""
    category: str = "other"
    system: str = ""
    sites: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    detected_at: RFC3339
    drill: bool = False
    maintenance: bool = False
    next_clock: ClockRef | None = None  # the first pending report
    # what to do, by language: the runbook line of the category in the incident's frozen
    # plan (``Incident.headline``); empty in events written before 0.7 and in ``of``
    runbook: dict[str, str] = {}

    @classmethod
    def of(cls, incident: Mapping[str, Any]) -> "Headline":
        """From the incident JSON (DESIGN.md "Incident JSON"): for tests, and 0.5's events
        (the router builds it from the typed incident, ``Incident.headline``)."""
        pending = sorted((c for c in incident.get("clocks") or () if c.get("status") == "pending"),
                         key=lambda c: c["due_at"])
        return cls(id=incident["id"], status=incident.get("status", "open"), level=incident["level"],
                   level_name=incident.get("level_name", ""), plan=incident.get("plan", ""),
                   category=incident.get("category", "other"), system=incident.get("system", ""),
                   sites=tuple(incident.get("sites") or ()), units=tuple(incident.get("units") or ()),
                   faults=tuple(incident.get("faults") or ()), detected_at=incident["detected_at"],
                   drill=bool(incident.get("drill")), maintenance=bool(incident.get("maintenance")),
                   next_clock=ClockRef.of(pending[0]) if pending else None)


class IncidentEvent(Record):
    kind: Kind
    incident: Headline
    at: RFC3339
    actor: str = ""
    detail: dict[str, Any] = {}  # the change as the timeline records it (from, to, reason, result, via …)
    clock: ClockRef | None = None  # for reminder / overdue

    @property
    def id(self) -> str:
        return self.incident.id

    @classmethod
    def of(cls, kind: str, incident: Mapping[str, Any], at: str, actor: str = "",
           detail: Mapping[str, Any] | None = None) -> "IncidentEvent":
        """The event for a change of ``incident`` given as its JSON after the change (tests
        and tools; the router uses ``about``); a reminder or overdue event names its clock
        by ``detail["clock"]``."""
        detail = dict(detail or {})
        clock = None
        if kind in ("reminder", "overdue"):
            clock = next((ClockRef.of(c) for c in incident.get("clocks") or () if c["id"] == detail.get("clock")),
                         None)
        return cls.about(kind, Headline.of(incident), at, actor, detail, clock)

    @classmethod
    def about(cls, kind: str, headline: Headline, at: str, actor: str = "",
              detail: Mapping[str, Any] | None = None, clock: ClockRef | None = None) -> "IncidentEvent":
        return cls.model_validate({"kind": kind, "incident": headline, "at": at, "actor": actor,
                                   "detail": dict(detail or {}), "clock": clock})

    def fields(self) -> dict[Any, Any]:
        body = self.model_dump(mode="json", include={"actor", "detail", "clock"}, exclude_none=True)
        body["headline"] = self.incident.model_dump(mode="json", exclude_none=True)
        return {"v": str(versions.EVENT), "kind": self.kind, "incident": self.incident.id, "at": self.at,
                "body": json.dumps(body, ensure_ascii=False, separators=(",", ":"))}

    @classmethod
    def from_fields(cls, raw: Mapping[Any, Any]) -> "IncidentEvent":
        """Raises ``BadEvent`` for an entry that is not an event (never will be)."""
        try:
            flat = {_s(k): _s(v) for k, v in raw.items()}
            body = json.loads(flat["body"])
            if "headline" not in body and isinstance(body.get("incident"), dict):
                body = _from_v1(body)
            return cls.model_validate({"kind": flat["kind"], "at": flat["at"], "incident": body["headline"],
                                       "actor": body.get("actor", ""), "detail": body.get("detail") or {},
                                       "clock": body.get("clock")})
        except (KeyError, TypeError, ValueError, UnicodeDecodeError, ValidationError) as err:
            raise BadEvent(f"{type(err).__name__}: {err}"[:500]) from err


def _from_v1(body: Mapping[str, Any]) -> dict[str, Any]:
    """0.5's event body (the whole incident, the change in ``extra``) as the current one."""
    extra = dict(body.get("extra") or {})
    clock = body.get("clock")
    return {"headline": Headline.of(body["incident"]).model_dump(mode="json"), "actor": str(extra.pop("by", "")),
            "detail": extra, "clock": ClockRef.of(clock).model_dump(mode="json") if isinstance(clock, dict) else None}


class BadEvent(ValueError):
    """A stream entry that cannot be read as an event."""


def publish(pipe: aioredis.client.Pipeline, event: IncidentEvent, stream: str = STREAM) -> None:
    """Queue the event on the caller's transaction (MULTI) so it commits with the change."""
    pipe.xadd(stream, event.fields(), maxlen=MAXLEN, approximate=True)


async def trim_read(client: aioredis.Redis, stream: str = STREAM) -> int:
    """Drop the entries every consumer group has read and acknowledged; returns how many.
    A stream without groups is left alone (``MAXLEN`` bounds it)."""
    try:
        groups = await client.xinfo_groups(stream)
    except redis.exceptions.ResponseError:  # no such stream yet
        return 0
    if not groups:
        return 0
    floors = []
    for group in groups:
        name = _s(group["name"])
        floor = _s(group["last-delivered-id"])
        if group["pending"]:
            floor = min(floor, _s((await client.xpending(stream, name))["min"]), key=_entry_key)
        floors.append(floor)
    return await client.xtrim(stream, minid=min(floors, key=_entry_key), approximate=False)


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class EventConsumer:
    """One consumer of a group. ``read`` gives new events and those another consumer
    took but never acknowledged; ``failed`` counts an event's failures and
    ``dead_letter`` moves one out of the way for good."""

    def __init__(self, client: aioredis.Redis, group: str, consumer: str, stream: str = STREAM,
                 idle: float = 30.0):
        self.client, self.group, self.consumer, self.stream = client, group, consumer, stream
        self.idle_ms = int(idle * 1000)
        self.attempts_key = f"{stream}:attempts:{group}"

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    async def read(self, block_ms: int = 1000, count: int = 100) -> list[tuple[str, IncidentEvent | BadEvent]]:
        """New events, and events a consumer claimed but never acknowledged; an entry
        that is not an event comes as its ``BadEvent``."""
        claimed: Any = await self.client.xautoclaim(self.stream, self.group, self.consumer,
                                                    min_idle_time=self.idle_ms, start_id="0-0", count=count)
        entries: list[Any] = [(entry_id, raw) for entry_id, raw in claimed[1] if raw]
        if not entries:
            resp: Any = await self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                                     count=count, block=block_ms)
            entries = [item for _stream, items in resp or [] for item in items]
        return [(_s(entry_id), _parse(raw)) for entry_id, raw in entries]

    async def ack(self, entry_id: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, entry_id)
            pipe.hdel(self.attempts_key, entry_id)
            await pipe.execute()

    async def failed(self, entry_id: str) -> int:
        """Count one more failure of this entry; returns the failures so far."""
        return int(await self.client.hincrby(self.attempts_key, entry_id, 1))

    async def dead_letter(self, entry_id: str, error: str, dead: str = DEAD) -> None:
        """Move the entry to the dead-letter stream and acknowledge it, in one transaction."""
        raw = await self.client.xrange(self.stream, entry_id, entry_id)
        fields: dict[Any, Any] = {_s(k): _s(v) for k, v in (raw[0][1] or {}).items()} if raw else {}
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(dead, {**fields, "entry": entry_id, "group": self.group, "error": error[:1000]},
                      maxlen=10_000, approximate=True)
            pipe.xack(self.stream, self.group, entry_id)
            pipe.hdel(self.attempts_key, entry_id)
            await pipe.execute()


def _parse(raw: Mapping[Any, Any]) -> IncidentEvent | BadEvent:
    try:
        return IncidentEvent.from_fields(raw)
    except BadEvent as err:
        return err


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value
