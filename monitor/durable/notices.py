"""Notices: a best-effort "something changed" channel for live views (the console).

Unlike the event stream (durable, read by paging exactly once), a notice is a Redis
PUBLISH: it is lost when no one listens, which is right for a screen that reloads its
state whenever it (re)connects. The incident store publishes one for every change in
the same MULTI as the change; the pager publishes one for every page sent. A notice
carries ids and units only (the reader fetches what it shows), so it costs the writers
little.

Kinds: ``incident_opened``, ``incident_changed``, ``incident_resolved``,
``clock_reminder``, ``clock_overdue``, ``page_sent``.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from monitor.durable import versions

CHANNEL = "hallmon:notices"
KINDS = ("incident_opened", "incident_changed", "incident_resolved", "clock_reminder", "clock_overdue",
         "page_sent")
_BY_EVENT = {"opened": "incident_opened", "resolved": "incident_resolved", "reminder": "clock_reminder",
             "overdue": "clock_overdue"}


def kind_for(events: Iterable[str]) -> str:
    """The notice kind for a store change with these incident event kinds."""
    for event in ("opened", "resolved", "overdue", "reminder"):
        if event in events:
            return _BY_EVENT[event]
    return "incident_changed"


def encode(kind: str, incident: str, units: Iterable[str], **extra: Any) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    return json.dumps({"v": versions.NOTICE, "kind": kind, "incident": incident, "units": sorted(units), **extra}, ensure_ascii=False)


def publish(client: Any, kind: str, incident: str, units: Iterable[str], **extra: Any) -> Any:
    """Queue (on a pipeline) or send (on a client) one notice; returns what PUBLISH returns."""
    return client.publish(CHANNEL, encode(kind, incident, units, **extra))


def decode(raw: str | bytes) -> dict[str, Any] | None:
    """A notice, or None for anything malformed (a notice is never trusted further)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("kind") not in KINDS or not isinstance(data.get("incident"), str):
        return None
    if not isinstance(data.get("units"), list):
        return None
    return data
