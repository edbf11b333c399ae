"""queue.http: a queue-number system's HTTP/JSON status (Xiamen 4(1)2 and 4(1)4).

The vendor's JSON is mapped onto ``waiting``, ``longest_wait_seconds``,
``tickets_issued_total``, ``last_called_at`` and ``windows_open`` by dotted paths
(``data.queue.waiting``, ``windows[0].open``), from a built-in preset or per target.
A dotted path covers every vendor format seen; a JSONPath library would add a
dependency for filters no status document needs.

Faults: ``queue.down`` (unreachable, 5xx, not JSON, a mapped field missing);
``queue.stalled`` (people waiting and no ticket called for ``stall_after``, counted from
the later of the last call and the hall's opening, so that yesterday's last call does not
make the morning queue "stalled" at the door's opening);
``queue.congested`` (more than ``max_waiting`` waiting, or a wait over ``max_wait``).
Stalled and congested are judged only while the site is open (opening hours on China's
working days, make-up days included, minus closures).
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Literal, cast

import aiohttp
from pydantic import Field, model_validator

from monitor.core.errors import ProbeConnectError, ProbeTimeout, ProtocolError
from monitor.core.hours import is_open, opened_at
from monitor.core.reading import Reading
from monitor.core.target import Duration, HttpUrl, Model, Target, TargetSpec

from .base import Probe

FIELDS = ("waiting", "longest_wait_seconds", "tickets_issued_total", "last_called_at", "windows_open")
PRESETS: dict[str, dict[str, str]] = {
    # hallmon's own simulator and any system that reports flat fields
    "generic": {"waiting": "waiting", "longest_wait_seconds": "longest_wait_seconds",
                "tickets_issued_total": "tickets_issued", "last_called_at": "last_called_at",
                "windows_open": "windows_open"},
    # a nested vendor document: {"code": 0, "data": {"queue": {...}, "counters": {...}}}
    "nested-v2": {"waiting": "data.queue.waiting", "longest_wait_seconds": "data.queue.max_wait_sec",
                  "tickets_issued_total": "data.counters.issued_today", "last_called_at": "data.queue.last_call_time",
                  "windows_open": "data.counters.windows_open"},
}
_PATH = re.compile(r"^[A-Za-z_][\w-]*(\[\d+\])*(\.[A-Za-z_][\w-]*(\[\d+\])*)*$")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
MAX_BODY = 256 * 1024


def lookup(doc: Any, path: str) -> Any:
    node = doc
    for key, index in _STEP.findall(path):
        if key:
            if not isinstance(node, dict) or key not in node:
                raise KeyError(path)
            node = node[key]
        else:
            if not isinstance(node, list) or int(index) >= len(node):
                raise KeyError(path)
            node = node[int(index)]
    return node


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{path}: not a number")
    return float(value)


def _time(value: Any, path: str) -> float:
    """Unix seconds (or milliseconds), or an ISO 8601 time."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 1000 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
        except ValueError:
            pass
    raise ValueError(f"{path}: not a time")


class Mapping(Model):
    waiting: str
    longest_wait_seconds: str | None = None
    tickets_issued_total: str | None = None
    last_called_at: str | None = None
    windows_open: str | None = None

    @model_validator(mode="after")
    def _paths(self) -> "Mapping":
        for name in FIELDS:
            path = getattr(self, name)
            if path is not None and not _PATH.match(path):
                raise ValueError(f"{name}: expected a dotted path like data.queue.waiting")
        return self


class QueueSpec(TargetSpec):
    kind: Literal["queue.http"]
    url: HttpUrl
    preset: Literal["generic", "nested-v2"] | None = None
    mapping: Mapping | None = None
    max_waiting: int = Field(20, ge=0)
    max_wait: Duration = 1800.0
    stall_after: Duration = 600.0
    headers: dict[str, str] = Field(default_factory=dict)


    @model_validator(mode="after")
    def _one_mapping(self) -> "QueueSpec":
        if self.preset is not None and self.mapping is not None:
            raise ValueError("give a preset or a mapping, not both")
        return self

    @property
    def paths(self) -> dict[str, str]:
        if self.mapping is not None:
            return {k: v for k, v in self.mapping.model_dump().items() if v}
        return PRESETS[self.preset or "generic"]


class QueueProbe(Probe):
    spec = QueueSpec
    system = "queue"
    faults = ("queue.down", "queue.stalled", "queue.congested")
    down_fault = "queue.down"

    async def check(self, target: Target) -> Reading:
        spec = cast(QueueSpec, target.spec)
        at, t0 = time.time(), time.perf_counter()
        try:
            async with self.ctx.session.get(spec.url, headers=spec.headers,
                                            timeout=aiohttp.ClientTimeout(total=spec.timeout)) as resp:
                if resp.status >= 400:
                    raise ProtocolError(target.name, f"{spec.url}: HTTP {resp.status}")
                raw = await resp.content.read(MAX_BODY + 1)
        except aiohttp.ServerTimeoutError as err:
            raise ProbeTimeout(target.name, f"{spec.url}: timed out") from err
        except (aiohttp.ClientConnectionError, OSError) as err:
            raise ProbeConnectError(target.name, f"{spec.url}: {err}") from err
        except aiohttp.ClientError as err:
            raise ProtocolError(target.name, f"{spec.url}: {err}") from err
        if len(raw) > MAX_BODY:
            raise ProtocolError(target.name, f"{spec.url}: status document larger than {MAX_BODY} bytes")
        try:
            doc = json.loads(raw)
        except ValueError as err:
            raise ProtocolError(target.name, f"{spec.url}: not JSON") from err
        got: dict[str, float] = {}
        try:
            for name, path in spec.paths.items():
                value = lookup(doc, path)
                got[name] = _time(value, path) if name == "last_called_at" else _number(value, path)
        except KeyError as err:
            raise ProtocolError(target.name, f"{spec.url}: no {err.args[0]!r} in the status document") from err
        except ValueError as err:
            raise ProtocolError(target.name, f"{spec.url}: {err}") from err
        values = {f"hallmon_queue_{k}": v for k, v in got.items() if k != "last_called_at"}
        faults: set[str] = set()
        now = datetime.fromtimestamp(at, timezone.utc)
        open_now = target.hours is None or is_open(target.hours, now, target.timezone, target.calendar)
        if open_now:
            waiting = got["waiting"]
            quiet_since = got.get("last_called_at")
            if quiet_since is not None and target.hours is not None:
                quiet_since = max(quiet_since, opened_at(target.hours, now, target.timezone).timestamp())
            if waiting > 0 and quiet_since is not None and at - quiet_since > spec.stall_after:
                faults.add("queue.stalled")
            if waiting > spec.max_waiting or got.get("longest_wait_seconds", 0) > spec.max_wait:
                faults.add("queue.congested")
        return Reading(target=target.name, at=at, ok=True, duration=time.perf_counter() - t0,
                       faults=frozenset(faults), values=values,
                       detail={"open": open_now, **({"last_called_at": got["last_called_at"]}
                                                    if "last_called_at" in got else {})})
