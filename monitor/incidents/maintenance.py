"""Announced maintenance windows (Putian art. 3: planned power cuts, network switch-overs,
upgrades are announced in advance): faults inside a window are recorded as always, but
their pages are held back.

Windows come from the config (``sites[].maintenance``, read-only) and are announced at
run time through ``/api/v1/maintenance`` or ``hallmon maintenance add``; those are kept
in Redis with who announced them and why, and ending one early records who ended it.
A window covers sites (a unit's window covers every site of the unit) from ``from`` to
``to``; whether an alert is covered is judged per alert and per moment (``covers``).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

import redis.asyncio as aioredis

KEY = "hallmon:maintenance"  # HASH id → window JSON
SEQ = "hallmon:maintenance:seq"
LONGEST = timedelta(days=31)
KEEP = timedelta(days=3 * 365 + 1)  # Shenzhen 4.3.4: the record is kept three years


class BadWindow(ValueError):
    pass


class NoWindow(KeyError):
    pass


def _time(value: Any, key: str) -> datetime:
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadWindow(f"{key}: expected an RFC 3339 time") from None
    if dt.tzinfo is None or not 2000 <= dt.year <= 2100:
        raise BadWindow(f"{key}: expected an RFC 3339 time with its offset, between 2000 and 2100")
    return dt


@dataclass(frozen=True, slots=True)
class Window:
    id: str
    sites: tuple[str, ...]
    units: tuple[str, ...]
    start: datetime
    end: datetime
    reason: str
    by: str
    created_at: datetime | None = None
    ended_by: str | None = None  # ended early, by whom
    source: str = "api"  # api | config

    def covers(self, site: str | None, unit: str | None, at: datetime) -> bool:
        return (site in self.sites or unit in self.units) and self.start <= at < self.end

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "sites": list(self.sites), "units": list(self.units),
                "from": self.start.isoformat(timespec="seconds"), "to": self.end.isoformat(timespec="seconds"),
                "reason": self.reason, "by": self.by, "source": self.source, "ended_by": self.ended_by,
                "created_at": self.created_at.isoformat(timespec="seconds") if self.created_at else None}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Window":
        return cls(id=d["id"], sites=tuple(d.get("sites") or ()), units=tuple(d.get("units") or ()),
                   start=datetime.fromisoformat(d["from"]), end=datetime.fromisoformat(d["to"]), reason=d["reason"],
                   by=d["by"], created_at=datetime.fromisoformat(d["created_at"]) if d.get("created_at") else None,
                   ended_by=d.get("ended_by"), source=d.get("source", "api"))


def parse(body: Any, sites: Iterable[str], units: Iterable[str], now: datetime) -> dict[str, Any]:
    """Validate an announcement ``{"sites"|"units", "from", "to", "reason", "by"}``."""
    if not isinstance(body, dict):
        raise BadWindow("body: expected a JSON object")
    unknown_keys = sorted(set(body) - {"sites", "units", "from", "to", "reason", "by"})
    if unknown_keys:
        raise BadWindow(f"{unknown_keys[0]}: unknown field")
    if ("sites" in body) == ("units" in body):
        raise BadWindow("sites, units: give exactly one of them")
    scope = "sites" if "sites" in body else "units"
    known = set(sites) if scope == "sites" else set(units)
    ids = body[scope]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids) or len(ids) > 1000:
        raise BadWindow(f"{scope}: expected a non-empty list of ids")
    missing = sorted(set(ids) - known)
    if missing:
        raise BadWindow(f"{scope}: no such {scope[:-1]} {missing[0]!r}")
    start, end = _time(body.get("from"), "from"), _time(body.get("to"), "to")
    if end <= start:
        raise BadWindow("to: must be after from")
    if end <= now:
        raise BadWindow("to: the window is already over")
    if end - start > LONGEST:
        raise BadWindow("to: a window lasts at most 31 days")
    for key in ("reason", "by"):
        value = body.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > 500:
            raise BadWindow(f"{key}: expected a non-empty string of at most 500 characters")
    return {"scope": scope, "ids": tuple(dict.fromkeys(ids)), "start": start, "end": end,
            "reason": body["reason"], "by": body["by"]}


def from_config(cfg: Any) -> list[Window]:
    return [Window(id=f"config:{site.id}:{n}", sites=(site.id,), units=(), start=w.from_, end=w.to,
                   reason=w.reason or "config", by="config", source="config")
            for unit in cfg.organisation.units for site in unit.sites for n, w in enumerate(site.maintenance)]


class Windows:
    """The windows in force: the config's and those announced in Redis."""

    def __init__(self, client: aioredis.Redis, config: Any):
        self.r = client
        self._config = config

    async def announce(self, spec: dict[str, Any], now: datetime | None = None) -> Window:
        now = now or datetime.now(timezone.utc)
        n = await self.r.incr(SEQ)
        window = Window(id=f"MW-{now.strftime('%Y%m%d')}-{n:04d}", sites=spec["ids"] if spec["scope"] == "sites" else (),
                        units=spec["ids"] if spec["scope"] == "units" else (), start=spec["start"], end=spec["end"],
                        reason=spec["reason"], by=spec["by"], created_at=now)
        await self.r.hset(KEY, window.id, json.dumps(window.to_json(), ensure_ascii=False))
        return window

    async def stored(self) -> list[Window]:
        raw = await self.r.hgetall(KEY)
        return sorted((Window.from_json(json.loads(v)) for v in raw.values()), key=lambda w: (w.start, w.id))

    async def all(self) -> list[Window]:
        return from_config(self._config()) + await self.stored()

    async def end(self, window_id: str, by: str, now: datetime | None = None) -> Window:
        """End a window now (it stays on record, with who ended it)."""
        now = now or datetime.now(timezone.utc)
        raw = await self.r.hget(KEY, window_id)
        if raw is None:
            raise NoWindow(window_id)
        window = Window.from_json(json.loads(raw))
        if window.end <= now:
            return window  # over already: nothing to end
        ended = replace(window, end=max(now, window.start), ended_by=by)
        await self.r.hset(KEY, window_id, json.dumps(ended.to_json(), ensure_ascii=False))
        await self.prune()
        return ended

    async def prune(self) -> None:
        old = [w.id for w in await self.stored() if w.end.timestamp() < time.time() - KEEP.total_seconds()]
        if old:
            await self.r.hdel(KEY, *old)
