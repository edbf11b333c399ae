"""Alert: a fault in Alertmanager's v2 alert shape, whichever way it came in.

Probes (through the fault tracker), Alertmanager webhooks and POST /api/v1/alerts all
produce this one value; the router consumes nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1


_STEPS: dict[tuple[int, str, str], int] = {}  # (state, name, value) -> state after that pair
_STEPS_MAX = 200_000


def _step(h: int, name: str, value: str) -> int:
    for part in (name, value):
        for b in part.encode():
            h = ((h ^ b) * _FNV_PRIME) & _MASK
        h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
    return h


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's label-set fingerprint (FNV-1a 64 over sorted names and values,
    each followed by 0xff), so a probe alert and the same Prometheus alert agree.

    The hash runs byte by byte in Python (~10 µs an alert); in a storm most label pairs
    repeat at the same position (alertname, fault, site…), so the state after each pair
    is memoised (bounded) and only the pairs that differ (``target``) are hashed."""
    h = _FNV_OFFSET
    steps = _STEPS
    for name in sorted(labels):
        key = (h, name, labels[name])
        nxt = steps.get(key)
        if nxt is None:
            nxt = _step(h, name, labels[name])
            if len(steps) >= _STEPS_MAX:
                steps.clear()
            steps[key] = nxt
        h = nxt
    return f"{h:016x}"


def rfc3339(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_unix(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


@dataclass(frozen=True, slots=True)
class Alert:
    labels: Mapping[str, str]
    starts_at: datetime
    annotations: Mapping[str, str] = field(default_factory=dict)
    ends_at: datetime | None = None  # set (and not in the future) when resolved
    generator_url: str = ""
    source: str = "probe"  # probe | alertmanager | api | drill

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def fault(self) -> str | None:
        return self.labels.get("fault")

    def resolved_at(self, now: datetime) -> datetime | None:
        """When the alert ended, if it has ended by ``now``."""
        return self.ends_at if self.ends_at is not None and self.ends_at <= now else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at),
            "generatorURL": self.generator_url,
        }
        if self.ends_at is not None:
            out["endsAt"] = rfc3339(self.ends_at)
        return out
