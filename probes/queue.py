"""queue.http: a queue-number (取号叫号) system's HTTP/JSON status.

The vendor's JSON is mapped to ``waiting``, ``longest_wait_seconds``,
``tickets_issued_total``, ``last_called_at`` and ``windows_open`` by JSON paths
(``$.data.waiting``, ``$.windows[0].open``) configured per target over a built-in
preset. Unreachable, 5xx, or JSON that does not map → ``queue.down``. Inside the
opening hours only: people waiting and no ticket called for ``stall_after`` →
``queue.stalled``; waiting over ``max_waiting`` or longest wait over ``max_wait`` →
``queue.congested``.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any, Literal

import aiohttp
from pydantic import Field, field_validator

from monitor.errors import ProbeConnectError, ProbeTimeout, ProtocolError
from monitor.reading import Reading
from monitor.target import Duration, Target, TargetSpec

from .base import Probe
from .hours import OpeningHours

_MAX_BODY = 1 << 20
FIELDS = ("waiting", "longest_wait_seconds", "tickets_issued_total", "last_called_at", "windows_open")
PRESETS: dict[str, dict[str, str]] = {
    # the shape of simulators.queue and of the common "/api/queue/status" vendors
    "generic": {"waiting": "$.waiting", "longest_wait_seconds": "$.longest_wait_seconds",
                "tickets_issued_total": "$.tickets_issued", "last_called_at": "$.last_called_at",
                "windows_open": "$.windows_open"},
}
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def compile_path(path: str) -> tuple[str | int, ...]:
    """``$.data.list[0].n`` → ``("data", "list", 0, "n")``."""
    if not path.startswith("$"):
        raise ValueError(f"expected a JSON path starting with $, got {path!r}")
    rest, steps = path[1:], []
    while rest:
        m = _STEP.match(rest)
        if not m:
            raise ValueError(f"cannot read JSON path {path!r} at {rest!r}")
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        rest = rest[m.end():]
    return tuple(steps)


def lookup(doc: Any, steps: tuple[str | int, ...]) -> Any:
    for step in steps:
        if isinstance(step, int) and isinstance(doc, list) and step < len(doc):
            doc = doc[step]
        elif isinstance(step, str) and isinstance(doc, dict) and step in doc:
            doc = doc[step]
        else:
            return None
    return doc


class QueueSpec(TargetSpec):
    kind: Literal["queue.http"]
    url: str
    preset: Literal["generic"] = "generic"
    paths: dict[Literal[FIELDS], str] = Field(default_factory=dict)  # overrides the preset's
    stall_after: Duration = 600.0
    max_waiting: int = Field(20, ge=0)
    max_wait: Duration = 1800.0
    opening: OpeningHours = OpeningHours()

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("expected an http:// or https:// URL")
        return v

    @field_validator("paths")
    @classmethod
    def _paths(cls, v: dict[str, str]) -> dict[str, str]:
        for path in v.values():
            compile_path(path)
        return v

    def path(self, field: str) -> tuple[str | int, ...]:
        return compile_path(self.paths.get(field) or PRESETS[self.preset][field])


def _number(value: Any, field: str, target: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ProtocolError(target, f"queue status: {field} is not a number: {str(value)[:40]}")
    try:
        return float(value)
    except ValueError:
        raise ProtocolError(target, f"queue status: {field} is not a number: {value[:40]!r}") from None


def _timestamp(value: Any, target: str) -> float | None:
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    raise ProtocolError(target, f"queue status: last_called_at is not a time: {str(value)[:40]!r}")


class QueueProbe(Probe):
    spec = QueueSpec
    system = "queue"
    faults = ("queue.down", "queue.stalled", "queue.congested")
    down_fault = "queue.down"

    async def check(self, target: Target) -> Reading:
        spec: QueueSpec = target.spec
        at, t0 = time.time(), time.perf_counter()
        try:
            async with self.ctx.session.get(spec.url, timeout=aiohttp.ClientTimeout(total=spec.timeout),
                                            headers={"Accept": "application/json"}) as resp:
                status = resp.status
                body = await resp.content.read(_MAX_BODY + 1)
        except aiohttp.ServerTimeoutError as err:
            raise ProbeTimeout(target.name, f"{spec.url}: timed out") from err
        except (aiohttp.ClientConnectionError, OSError) as err:
            raise ProbeConnectError(target.name, f"{spec.url}: {err}") from err
        except aiohttp.ClientError as err:
            raise ProtocolError(target.name, f"{spec.url}: {err}") from err
        if status >= 300:
            raise ProtocolError(target.name, f"{spec.url}: HTTP {status}")
        if len(body) > _MAX_BODY:
            raise ProtocolError(target.name, f"{spec.url}: status larger than {_MAX_BODY} bytes")
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise ProtocolError(target.name, f"{spec.url}: not JSON: {err}") from None
        got = {f: lookup(doc, spec.path(f)) for f in FIELDS}
        waiting = _number(got["waiting"], "waiting", target.name)
        if waiting is None:
            raise ProtocolError(target.name, f"{spec.url}: no 'waiting' at {spec.paths.get('waiting') or PRESETS[spec.preset]['waiting']}")
        longest = _number(got["longest_wait_seconds"], "longest_wait_seconds", target.name)
        issued = _number(got["tickets_issued_total"], "tickets_issued_total", target.name)
        windows = _number(got["windows_open"], "windows_open", target.name)
        called = _timestamp(got["last_called_at"], target.name)
        faults: set[str] = set()
        is_open = spec.opening.is_open(at)
        if is_open:
            if waiting > 0 and called is not None and at - called > spec.stall_after:
                faults.add("queue.stalled")
            if waiting > spec.max_waiting or (longest is not None and longest > spec.max_wait):
                faults.add("queue.congested")
        values = {"hallmon_queue_waiting": waiting}
        for name, value in (("hallmon_queue_longest_wait_seconds", longest),
                            ("hallmon_queue_tickets_issued_total", issued),
                            ("hallmon_queue_windows_open", windows)):
            if value is not None:
                values[name] = value
        return Reading(target=target.name, at=at, ok=True, duration=time.perf_counter() - t0,
                       faults=frozenset(faults), values=values,
                       detail={"open": is_open, **({"last_called_at": called} if called else {})})
