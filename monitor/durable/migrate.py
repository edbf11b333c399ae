"""``hallmon migrate``: what of the stored data is of an older form, and the rewrite of
the incident records at rest to the current one (monitor/durable/versions.py).

Nothing here is needed for correctness: every reader takes every older form (on read).
The rewrite is for operators who want the store to hold one form only, e.g. before
removing an old reader in a far later release. Each record is rewritten in its own
WATCH/MULTI, after reading it back through the current reader, so the command is
idempotent, can run beside a live service (a record changed meanwhile is already
current) and can be SIGKILLed at any point: every record is either old or new, never
half of each. Timeline entries are never rewritten: the hash chain covers them as they
were written. Events, intake entries, timers and paging states are short-lived and
counted only: their readers take the old forms until they are consumed."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from monitor.durable import versions

P = "hallmon:"


@dataclass
class Form:
    name: str
    current: int
    by_version: dict[int, int] = field(default_factory=dict)
    rewritten: int = 0
    rewritable: bool = False

    def older(self) -> int:
        return sum(n for v, n in self.by_version.items() if v < self.current)

    def line(self, check: bool) -> str:
        counts = ", ".join(f"v{v}: {n}" for v, n in sorted(self.by_version.items())) or "none"
        if not self.older():
            what = "all current"
        elif not self.rewritable:
            what = f"{self.older()} older, read as they are"
        elif check:
            what = f"{self.older()} would be rewritten to v{self.current}"
        else:
            what = f"{self.rewritten} rewritten to v{self.current}"
        return f"{self.name}: {counts} ({what})"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _scan(client: aioredis.Redis, match: str) -> list[str]:
    return [k.decode() if isinstance(k, bytes) else k async for k in client.scan_iter(match=match, count=1000)]


async def _rewrite(client: aioredis.Redis, key: str, upgrade: Any, field_name: str | None = None) -> bool:
    """Rewrite one string (or one hash field) through ``upgrade`` if it is still older;
    False when it was current already or gone."""
    async with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(key)
                raw = await (pipe.hget(key, field_name) if field_name else pipe.get(key))
                if raw is None:
                    return False
                record = json.loads(raw)
                new = upgrade(record)
                if new is None:
                    return False
                pipe.multi()
                if field_name:
                    pipe.hset(key, field_name, json.dumps(new, ensure_ascii=False))
                else:
                    pipe.set(key, json.dumps(new, ensure_ascii=False), keepttl=True)
                await pipe.execute()
                return True
            except redis.exceptions.WatchError:
                continue


def _incident(record: dict[str, Any]) -> dict[str, Any] | None:
    from monitor.incidents.records import Incident

    if versions.version(record) >= versions.INCIDENT or "frozen_plan" not in record:
        return None  # current, or in the store's own compacted form (its reader takes it)
    return Incident.from_json(record).to_json()


def _alert(record: dict[str, Any]) -> dict[str, Any] | None:
    from monitor.incidents.records import StoredAlert

    return StoredAlert.from_json(record).to_json() if versions.version(record) < versions.ALERT else None


async def migrate(client: aioredis.Redis, check: bool = True) -> list[Form]:
    """Survey every stored form; unless ``check``, rewrite the older incident documents
    and stored alerts."""
    incidents = Form("incident documents", versions.INCIDENT, rewritable=True)
    alerts = Form("stored alerts", versions.ALERT, rewritable=True)
    timeline = Form("timeline entries", versions.TIMELINE)
    for key in await _scan(client, f"{P}incident:*"):
        if key.endswith(":alerts"):
            for fp, raw in (await client.hgetall(key)).items():
                v = versions.version(json.loads(raw))
                alerts.by_version[v] = alerts.by_version.get(v, 0) + 1
                if v < alerts.current and not check and await _rewrite(client, key, _alert, _text(fp)):
                    alerts.rewritten += 1
            continue
        doc = await client.get(key)
        if doc is None:
            continue
        v = versions.version(json.loads(doc))
        incidents.by_version[v] = incidents.by_version.get(v, 0) + 1
        if v < incidents.current and not check and await _rewrite(client, key, _incident):
            incidents.rewritten += 1
    for key in await _scan(client, f"{P}timeline:*"):
        for raw in await client.lrange(key, 0, -1):
            v = versions.version(json.loads(raw))
            timeline.by_version[v] = timeline.by_version.get(v, 0) + 1
    forms = [incidents, alerts, timeline]
    for name, stream, current in (("incident events", f"{P}events", versions.EVENT),
                                  ("intake entries", f"{P}intake", versions.INTAKE)):
        form = Form(name, current)
        entries: Any = await client.xrange(stream, count=100_000)
        for _entry, fields in entries or ():
            flat = {_text(k): v for k, v in (fields or {}).items()}
            v = versions.version(flat)
            form.by_version[v] = form.by_version.get(v, 0) + 1
        forms.append(form)
    return forms
