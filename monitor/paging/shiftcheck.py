"""The shift check (Guizhou part 2): at every shift start and end the duty officer checks
fire, water, power, theft, the monitoring systems and the phones (防火、防水、防电、防盗、
监控系统、通讯电话) and logs each anomaly with its follow-up.

A check is recorded through the API (``POST /api/v1/shift-checks``) or the CLI
(``hallmon shift-check``) and kept in Redis three years (Shenzhen 4.3.4). The hand-off
report shows, item by item, what hallmon's own readings say (UPS on mains, cameras and
phones reachable: targets whose ``system`` names the item), what the officers found at
the start and end of the shift, and every item whose latest check found an anomaly: the
next shift inherits it until a check finds the item in order again.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, Iterable, Literal

import redis.asyncio as aioredis
from pydantic import Field, ValidationError, field_validator, model_validator

from monitor.core.target import AwareTime, Model

ITEMS: dict[str, tuple[str, str]] = {  # item: (zh, en), in the order of the notice
    "fire": ("防火", "fire"), "water": ("防水", "water"), "power": ("防电", "power"),
    "theft": ("防盗", "theft"), "monitoring": ("监控系统", "monitoring systems"), "phones": ("通讯电话", "phones"),
}
# the target systems whose readings speak for an item (a target's ``system`` label)
SYSTEMS: dict[str, tuple[str, ...]] = {
    "fire": ("fire", "fire_alarm"), "water": ("water", "leak"), "power": ("power", "ups"),
    "theft": ("security", "intrusion", "alarm"), "monitoring": ("monitoring", "cctv", "camera", "video"),
    "phones": ("phone", "phones", "telephone", "voip"),
}
KEY = "hallmon:shiftchecks:"
KEEP_SECONDS = (3 * 365 + 1) * 86400


class ItemCheck(Model):
    ok: bool
    note: str | None = Field(None, min_length=1, max_length=500)
    follow_up: str | None = Field(None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _anomaly_is_described(self) -> "ItemCheck":
        if not self.ok and not self.note:
            raise ValueError("an anomaly needs a note saying what was found")
        return self


class ShiftCheck(Model):
    roster: str = Field(min_length=1, max_length=100)
    moment: Literal["start", "end"]
    by: str = Field(min_length=1, max_length=100)
    at: AwareTime
    items: dict[str, ItemCheck] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _known(cls, v: dict[str, ItemCheck]) -> dict[str, ItemCheck]:
        unknown = sorted(set(v) - set(ITEMS))
        if unknown:
            raise ValueError(f"unknown item(s) {', '.join(unknown)}; items: {', '.join(ITEMS)}")
        return v


class BadCheck(ValueError):
    pass


def parse(body: Any, roster: str, now: datetime) -> ShiftCheck:
    """A check from a request body (``at`` defaults to now, must not be in the future)."""
    if not isinstance(body, dict):
        raise BadCheck("body: expected a JSON object")
    try:
        check = ShiftCheck.model_validate({"at": now.isoformat(), **body, "roster": roster})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadCheck(f"{where}: {first['msg']}") from None
    if check.at > now or check.at.year < 2000:
        raise BadCheck("at: must not be in the future")
    return check


async def record(r: aioredis.Redis, check: ShiftCheck) -> dict:
    doc = check.model_dump(mode="json")
    key = f"{KEY}{check.roster}"
    async with r.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {json.dumps(doc, ensure_ascii=False, sort_keys=True): check.at.timestamp()})
        pipe.zremrangebyscore(key, "-inf", time.time() - KEEP_SECONDS)
        await pipe.execute()
    return doc


async def recent(r: aioredis.Redis, roster: str, since: datetime, until: datetime) -> list[dict]:
    raw = await r.zrangebyscore(f"{KEY}{roster}", since.timestamp(), until.timestamp())
    return [json.loads(v) for v in raw if isinstance(v, (str, bytes))]


def readings(targets: Iterable[dict]) -> dict[str, list[dict]]:
    """What hallmon itself sees for each item: one line per matching target."""
    out: dict[str, list[dict]] = {item: [] for item in ITEMS}
    for t in targets:
        item = next((i for i, systems in SYSTEMS.items() if t.get("system") in systems), None)
        if item is None:
            continue
        reading = t.get("last_reading") or {}
        active = sorted(f for f, s in (t.get("faults") or {}).items() if s.get("active"))
        on_battery = (reading.get("values") or {}).get("hallmon_ups_on_battery")
        out[item].append({"target": t["name"], "site": t["site"], "seen": bool(reading),
                          "ok": bool(reading.get("ok")) and not active, "faults": active,
                          "on_mains": None if on_battery is None else on_battery == 0})
    return out


def section(checks: list[dict], targets: Iterable[dict], shift_start: datetime) -> dict:
    """The report's check section: per item hallmon's readings and the start and end
    checks of this shift; the anomalies the latest check of each item left open."""
    seen = readings(targets)
    items = []
    latest: dict[str, dict] = {}
    for c in sorted(checks, key=lambda c: c["at"]):
        for item, found in c["items"].items():
            latest[item] = {**found, "by": c["by"], "at": c["at"], "moment": c["moment"]}
    for item in ITEMS:
        this_shift = [c for c in checks if datetime.fromisoformat(c["at"]) >= shift_start and item in c["items"]]
        row: dict[str, Any] = {"item": item, "hallmon": seen[item]}
        for moment in ("start", "end"):
            found = [c for c in this_shift if c["moment"] == moment]
            row[moment] = {**found[-1]["items"][item], "by": found[-1]["by"], "at": found[-1]["at"]} if found else None
        items.append(row)
    open_ = [{"item": item, **found} for item, found in latest.items() if not found["ok"]]
    return {"items": items, "anomalies": sorted(open_, key=lambda a: list(ITEMS).index(a["item"]))}
