"""Zabbix as a source: the body our media type posts (``deploy/zabbix/``), checked in
full, and the mapping from a Zabbix event to hallmon's labels.

The media type's JavaScript posts one JSON object per notification (``version: "1"``)::

    {"version": "1", "instance": "zabbix-main", "kind": "problem|recovery|update",
     "event": {"id": "4711", "name": "UPS on battery", "severity": 5,
               "time": "2026-12-07T07:19:48Z", "tags": [{"tag": "…", "value": "…"}]},
     "host": {"name": "ups-futian-1", "groups": ["Halls/Futian"]},
     "trigger": {"id": "23001"},
     "recovery": {"id": "4712", "time": "…"},                       # kind recovery
     "update": {"user": "…", "action": "…", "message": "…",
                "acknowledged": true, "time": "…"}}                  # kind update

A problem becomes one alert whose identity is the Zabbix instance and problem event id
(label ``zabbix_event``), so a re-send after a Zabbix restart changes nothing. Its
labels are remembered (``Events``) and reused by its recovery and updates: a mapping
changed by a reload in between cannot orphan the alert.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

import orjson

from monitor.config.sources import SEVERITIES, Severity, ZabbixSource
from monitor.core.alert import Alert, rfc3339
from monitor.core.errors import Invalid
from monitor.service.inputs import parse_time

__all__ = ["Events", "ZabbixEvent", "labels_for", "parse_event", "UNMAPPED_FAULT"]

UNMAPPED_FAULT = "zabbix.unmapped"  # no rule, tag or severity gave a fault: category other, flagged
_TEXT = 2048
_MAX_ITEMS = 200
KINDS = ("problem", "recovery", "update")


@dataclass(frozen=True, slots=True)
class Update:
    user: str
    action: str
    message: str
    acknowledged: bool
    at: datetime | None


@dataclass(frozen=True, slots=True)
class ZabbixEvent:
    instance: str
    kind: str  # problem | recovery | update
    id: str
    name: str
    severity: int  # 0 not classified … 5 disaster
    at: datetime | None
    tags: tuple[tuple[str, str], ...]
    host: str
    groups: tuple[str, ...]
    trigger: str
    recovered_at: datetime | None
    update: Update | None

    @property
    def key(self) -> str:
        return f"{self.instance}:{self.id}"

    @property
    def severity_name(self) -> Severity:
        return SEVERITIES[self.severity]


def _str(obj: Mapping[str, Any], key: str, where: str, required: bool = False, limit: int = _TEXT) -> str:
    v = obj.get(key)
    if v is None or v == "":
        if required:
            raise Invalid(f"{where}.{key}: required")
        return ""
    if type(v) is not str:
        raise Invalid(f"{where}.{key}: expected a string")
    if len(v) > limit:
        raise Invalid(f"{where}.{key}: at most {limit} characters")
    return v


def _obj(body: Mapping[str, Any], key: str, required: bool = True) -> Mapping[str, Any]:
    v = body.get(key)
    if v is None and not required:
        return {}
    if not isinstance(v, dict):
        raise Invalid(f"{key}: expected an object")
    return v


def _time(obj: Mapping[str, Any], key: str, where: str) -> datetime | None:
    v = obj.get(key)
    return None if v in (None, "") else parse_time(v, f"{where}.{key}")


def _id(obj: Mapping[str, Any], key: str, where: str, required: bool) -> str:
    v = _str(obj, key, where, required, limit=20)
    if v and not (v.isascii() and v.isdigit()):
        raise Invalid(f"{where}.{key}: expected a Zabbix id (digits), got {v!r}")
    return v


def parse_event(body: Any) -> ZabbixEvent:
    """The media type's body, checked in full: ``Invalid`` names the first bad field."""
    if not isinstance(body, dict):
        raise Invalid("body: expected the object hallmon's Zabbix media type sends")
    if body.get("version") != "1":
        raise Invalid(f"version: expected \"1\", got {body.get('version')!r}")
    instance = _str(body, "instance", "body", limit=64) or "zabbix"
    if not instance.replace("-", "").replace("_", "").replace(".", "").isalnum() or not instance.isascii():
        raise Invalid("instance: letters, digits, - _ . only")
    kind = body.get("kind")
    if kind not in KINDS:
        raise Invalid(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    ev, host, trig = _obj(body, "event"), _obj(body, "host", required=False), _obj(body, "trigger", required=False)
    sev = ev.get("severity")
    if type(sev) is not int or not 0 <= sev <= 5:
        raise Invalid("event.severity: expected an integer 0..5 (Zabbix's {EVENT.NSEVERITY})")
    raw_tags = ev.get("tags", [])
    if not isinstance(raw_tags, list) or len(raw_tags) > _MAX_ITEMS:
        raise Invalid(f"event.tags: expected a list of at most {_MAX_ITEMS} {{tag, value}} objects")
    tags = []
    for i, t in enumerate(raw_tags):
        if not isinstance(t, dict):
            raise Invalid(f"event.tags[{i}]: expected an object {{tag, value}}")
        tags.append((_str(t, "tag", f"event.tags[{i}]", required=True, limit=255),
                     _str(t, "value", f"event.tags[{i}]", limit=255)))
    groups = host.get("groups", [])
    if not isinstance(groups, list) or len(groups) > _MAX_ITEMS or not all(
            type(g) is str and 0 < len(g) <= 255 for g in groups):
        raise Invalid(f"host.groups: expected a list of at most {_MAX_ITEMS} group names")
    rec = _obj(body, "recovery", required=kind == "recovery")
    upd = _obj(body, "update", required=kind == "update")
    update = None
    if kind == "update":
        acked = upd.get("acknowledged", False)
        if type(acked) is not bool:
            raise Invalid("update.acknowledged: expected true or false")
        update = Update(_str(upd, "user", "update", limit=200) or "Zabbix", _str(upd, "action", "update", limit=500),
                        _str(upd, "message", "update"), acked, _time(upd, "time", "update"))
    return ZabbixEvent(instance=instance, kind=kind, id=_id(ev, "id", "event", True),
                       name=_str(ev, "name", "event", required=True), severity=sev, at=_time(ev, "time", "event"),
                       tags=tuple(tags), host=_str(host, "name", "host", limit=255), groups=tuple(groups),
                       trigger=_id(trig, "id", "trigger", False),
                       recovered_at=_time(rec, "time", "recovery") if kind == "recovery" else None,
                       update=update)


def _matches(event: ZabbixEvent, host_group: str | None, tag: str | None, value: str | None) -> bool:
    if host_group is not None and not any(
            g == host_group or (host_group.endswith("/") and g.startswith(host_group)) for g in event.groups):
        return False
    if tag is not None and not any(n == tag and (value is None or v == value) for n, v in event.tags):
        return False
    return True


def labels_for(event: ZabbixEvent, mapping: ZabbixSource, sites: Mapping[str, str]) -> dict[str, str]:
    """The event's labels: direct tags first, then the rules in order (the first to set a
    field wins), then the severity for the fault. ``sites`` maps site id → unit id; a site
    the config does not know is kept (the incident is flagged ``unmapped``), and an event
    with no fault at all gets ``zabbix.unmapped`` (category ``other``): never dropped."""
    fields: dict[str, str] = {}
    prefix = mapping.tag_prefix
    for name, value in event.tags:
        if name.startswith(prefix) and value and name[len(prefix):] in ("site", "unit", "system", "fault"):
            fields.setdefault(name[len(prefix):], value)
    for rule in mapping.rules:
        m = rule.match
        if _matches(event, m.host_group, m.tag, m.value):
            for key in ("site", "unit", "system", "fault"):
                v = getattr(rule.set, key)
                if v is not None:
                    fields.setdefault(key, v)
    if "fault" not in fields:
        fields["fault"] = mapping.severity.get(event.severity_name, UNMAPPED_FAULT)
    if "site" in fields and "unit" not in fields and fields["site"] in sites:
        fields["unit"] = sites[fields["site"]]
    labels = {"alertname": "ZabbixProblem", "zabbix_event": event.key, "severity": event.severity_name, **fields}
    if event.host:
        labels["host"] = event.host
    if "system" not in labels:
        labels["system"] = fields["fault"].split(".")[0]
    return labels


def alert_json(labels: Mapping[str, str], event: ZabbixEvent, starts: datetime, ends: datetime | None) -> dict:
    """One alert in Alertmanager's v2 shape (what the intake stores and parses)."""
    out = {"labels": dict(labels), "startsAt": rfc3339(starts),
           "annotations": {"summary": event.name, "zabbix_trigger": event.trigger} if event.trigger
           else {"summary": event.name}}
    if ends is not None:
        out["endsAt"] = rfc3339(ends)
    return out


class Events:
    """What hallmon remembers of each Zabbix problem: its labels and start, written once
    (SET NX) by the first problem notification, read by its re-sends, recovery and
    updates. Keys ``hallmon:zabbix:event:{instance}:{id}``, expiring after
    ``sources.zabbix.keep_events``."""

    PREFIX = "hallmon:zabbix:event:"

    def __init__(self, redis: Any):
        self.r = redis

    async def remember(self, event: ZabbixEvent, labels: Mapping[str, str], starts: datetime,
                       keep: float) -> tuple[dict[str, str], datetime]:
        """The problem's labels and start: those stored first if any, else these."""
        key = self.PREFIX + event.key
        mine = orjson.dumps({"v": 1, "labels": labels, "starts": rfc3339(starts)})
        pipe = self.r.pipeline(transaction=True)
        pipe.set(key, mine, nx=True, ex=int(keep))
        pipe.get(key)
        _, stored = await pipe.execute()
        return self._decode(stored) if stored else (dict(labels), starts)

    async def recall(self, event: ZabbixEvent) -> tuple[dict[str, str], datetime] | None:
        stored = await self.r.get(self.PREFIX + event.key)
        return self._decode(stored) if stored else None

    async def seen_update(self, event: ZabbixEvent, digest: str) -> bool:
        return bool(await self.r.exists(f"{self.PREFIX}{event.key}:update:{digest}"))

    async def note_update(self, event: ZabbixEvent, digest: str, keep: float) -> None:
        await self.r.set(f"{self.PREFIX}{event.key}:update:{digest}", "1", ex=int(keep))

    @staticmethod
    def _decode(raw: str | bytes) -> tuple[dict[str, str], datetime]:
        d = orjson.loads(raw)
        return d["labels"], datetime.fromisoformat(d["starts"].replace("Z", "+00:00"))


def to_alert(labels: Mapping[str, str], event: ZabbixEvent, starts: datetime) -> Alert:
    return Alert(labels=dict(labels), starts_at=starts, annotations={"summary": event.name}, source="zabbix")
