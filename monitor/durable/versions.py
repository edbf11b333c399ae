"""Schema versions of every form hallmon stores (issue 17: data lives for years).

Each stored form carries ``"v"``: the version of its shape. A reader takes every version
any release wrote; the forms written before versions existed (0.5 and 0.6) carry no
``"v"`` and are told apart by their shape. Older forms are upgraded **on read** (the
readers below and the records' ``from_json``), so a start changes nothing and a SIGKILL
can never leave a half-migrated record; ``hallmon migrate`` rewrites old incident
documents at rest (each in its own transaction, idempotent) and ``--check`` says what it
would change.

| form | key | v1 | v2 | v3 |
|---|---|---|---|---|
| incident document | ``incident:{id}`` | 0.5, 0.6 (no ``v``) | 0.7: ``v`` |
| stored alert | ``incident:{id}:alerts`` | 0.5, 0.6 (no ``v``) | 0.7: ``v`` |
| timeline entry | ``timeline:{id}`` | 0.5, 0.6 (no ``v``; never rewritten: the hash chain covers it) | 0.7: ``v`` |
| incident event | ``events`` | 0.5: ``body.incident`` (the whole incident), ``body.extra`` | 0.6: ``body.headline``; 0.7 adds ``v`` | 0.7: ``headline.runbook`` (the frozen plan's line; read as empty from v2) |
| intake entry | ``intake`` | 0.6 (no ``v``) | 0.7: ``v`` |
| timer payload | ``*timers:due`` | 0.5, 0.6 (no ``v``) | 0.7: ``v`` |
| paging state, outbox job | ``paging:*`` | 0.5, 0.6 (no ``v``) | 0.7: ``v`` |
| console notice | ``notices`` (pub/sub) | 0.6 (no ``v``) | 0.7: ``v`` |
| account, session, machine token, audit entry | ``auth:*`` (monitor/auth/records.py) | 0.7: ``v`` (new in 0.7) | |
| resolved document's wrapper | ``incident:{id}`` | ``{v, z}``: deflate alone (0.7) | ``{v, d: N, z}``: deflate with dictionary N (monitor/incidents/packing.py; told apart by ``d``, ``v`` stays the document's) | |
| frozen plan | inside the incident | any release's plan dump: read leniently (``monitor.plans.model.stored_plan``) | |

A reader meeting a ``v`` newer than it knows (a downgrade) reads what it can and logs it.
"""
from __future__ import annotations

from typing import Any, Mapping

INCIDENT = 2
ALERT = 2
TIMELINE = 2
EVENT = 3
INTAKE = 2
TIMER = 2
PAGING = 2
NOTICE = 2


def version(record: Mapping[str, Any], default: int = 1) -> int:
    """The record's ``v`` (an int or its text), ``default`` where it has none."""
    raw = record.get("v")
    if raw is None:
        return default
    try:
        return int(raw.decode() if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError):
        return default
