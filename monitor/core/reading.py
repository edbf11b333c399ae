"""Reading: what one check of one target saw."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class Reading:
    """The outcome of one check.

    ``faults`` are the fault names (DESIGN.md) this single reading shows; the fault
    tracker applies hysteresis before any of them becomes an alert. ``values`` maps a
    metric family name (``hallmon_ups_on_battery``) to its value for this target.
    ``detail`` carries protocol facts worth showing (HTTP status, DE 39 code, ups.status).
    """

    target: str
    at: float  # unix time the check started
    ok: bool  # the probe reached the device and understood it
    duration: float  # seconds
    faults: frozenset[str] = frozenset()
    values: Mapping[str, float] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def failure(cls, target: str, at: float, duration: float, fault: str, error: str,
                detail: Mapping[str, Any] | None = None) -> "Reading":
        return cls(target=target, at=at, ok=False, duration=duration,
                   faults=frozenset({fault}), error=error, detail=detail or {})

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at, "ok": self.ok, "duration_seconds": self.duration,
            "faults": sorted(self.faults), "values": dict(self.values),
            "detail": dict(self.detail), "error": self.error,
        }
