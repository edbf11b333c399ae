"""Alerts that end by themselves: a firing alert sent with an ``endsAt`` in the future
(Prometheus sends every alert so, a few evaluation intervals ahead, and sends it again
while it holds) ends at that time unless news of it moves the time on. That is what
Alertmanager does with such an alert (and, with its ``resolve_timeout``, with one sent
without ``endsAt``: hallmon leaves those to the sender, since Alertmanager's webhook
sends firing alerts without one and their resolution itself).

Each such alert has a durable timer in the clock timers (``alert|{fingerprint}``, due at
its ``endsAt``, carrying what the resolution needs): a resend moves it, and when it
comes the router ingests the alert as resolved at that time, like any resolution. The
timers live in Redis, so an alert whose time passes while hallmon is down ends on the
first poll after start, and one replica fires it. Ingesting a resolution twice changes
nothing, so a process killed between the ingest and the timer's removal is harmless.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import redis.asyncio as aioredis

from monitor.core.alert import Alert, from_unix
from monitor.core.timesource import iso, parse_iso
from monitor.durable.timers import Timers

WHAT = "expire"


def timer_id(fingerprint: str) -> str:
    return f"alert|{fingerprint}"


def ending(alerts: Iterable[Alert], now: datetime) -> list[Alert]:
    """The alerts that fire now and say when they end."""
    return [a for a in alerts if a.ends_at is not None and a.ends_at > now]


async def schedule(timers: Timers, alerts: Iterable[Alert], pipe: aioredis.client.Pipeline) -> None:
    """A timer per alert at its ``endsAt`` (moved, if one exists: the latest news wins)."""
    for alert in alerts:
        assert alert.ends_at is not None  # ``ending``
        payload = {"what": WHAT, "labels": dict(alert.labels), "starts_at": iso(alert.starts_at),
                   "ends_at": alert.ends_at.timestamp(), "source": alert.source}
        await timers.schedule(timer_id(alert.fingerprint), alert.ends_at.timestamp(), payload, pipe)


def resolution(payload: dict[str, Any]) -> Alert:
    """The alert its timer stands for, ended at its ``endsAt``."""
    return Alert(labels=payload["labels"], starts_at=parse_iso(payload["starts_at"]),
                 ends_at=from_unix(float(payload["ends_at"])), source=payload.get("source", "api"))

