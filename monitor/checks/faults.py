"""Fault tracker: readings in, alerts out, with hysteresis.

A fault becomes active once it has held for the target's ``for`` (0s: the first failing
reading) and clears once it has been absent for ``clear_for`` (0s: the first good
reading). The alert's ``startsAt`` is the first failing reading, not the moment ``for``
elapsed: the plans' clocks run from when the fault was first seen. Each transition is
logged once; repeated failing checks log nothing.

Topology: while one of a site's uplink targets has an active fault, every other fault
that becomes active at that site carries the label ``cause`` (the uplink's fault), so
the router folds them into the uplink's incident instead of opening twenty. The labels
an alert fired with are kept, so its resolution matches it whatever the uplink does
meanwhile. A fault seen before the uplink's own fault is active carries no cause: give
non-uplink targets a ``for`` of one interval where that matters.

Across a restart: the tracker starts empty, and a healthy first reading would be no
transition; ``resume`` takes up what the targets left firing (service/recovery.py reads
it from the open incidents), so that reading ends it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import structlog

from monitor.core.alert import Alert, from_unix
from monitor.core.reading import Reading
from monitor.core.target import Target

log = structlog.get_logger("hallmon.faults")

_SUMMARY = {
    "zh": "{site} {target}: {fault}",
}


@dataclass(slots=True)
class FaultState:
    first_seen: float  # first failing reading of this episode
    active: bool = False
    good_since: float | None = None  # first good reading while active
    error: str | None = None
    labels: dict | None = None  # the labels it fired with


class FaultTracker:
    def __init__(self, generator_url: str = "", uplinks: dict[str, set[str]] | None = None):
        self._states: dict[str, dict[str, FaultState]] = {}
        self._generator_url = generator_url
        self.uplinks = uplinks or {}  # site → names of its uplink targets

    def observe(self, target: Target, reading: Reading) -> list[Alert]:
        """Apply one reading; return the alerts that fired or resolved because of it."""
        states = self._states.setdefault(target.name, {})
        out: list[Alert] = []
        now = reading.at
        for fault in reading.faults:
            st = states.get(fault)
            if st is None:
                st = states[fault] = FaultState(first_seen=now)
                if target.spec.for_ > 0:
                    log.info("fault_pending", target=target.name, fault=fault, error=reading.error)
            st.good_since = None
            st.error = reading.error
            if not st.active and now - st.first_seen >= target.spec.for_:
                st.active = True
                log.warning("fault_active", target=target.name, fault=fault, site=target.site,
                            first_seen=from_unix(st.first_seen).isoformat(), error=reading.error)
                out.append(self._alert(target, fault, st, None))
        for fault in [f for f in states if f not in reading.faults]:
            st = states[fault]
            if not st.active:
                del states[fault]  # never held long enough to count
                log.info("fault_dropped", target=target.name, fault=fault)
                continue
            if st.good_since is None:
                st.good_since = now
            if now - st.good_since >= target.spec.clear_for:
                del states[fault]
                log.info("fault_cleared", target=target.name, fault=fault, site=target.site)
                out.append(self._alert(target, fault, st, now))
        return out

    def _cause(self, target: Target) -> str | None:
        for uplink in self.uplinks.get(target.site, ()):
            if uplink != target.name:
                for fault, st in self._states.get(uplink, {}).items():
                    if st.active:
                        return fault
        return None

    def _alert(self, target: Target, fault: str, st: FaultState, ended: float | None) -> Alert:
        if st.labels is None:
            st.labels = {"alertname": "HallmonFault", **target.labels, "fault": fault}
            cause = self._cause(target)
            if cause:
                st.labels["cause"] = cause
        labels = st.labels
        annotations = {"summary": _SUMMARY["zh"].format(site=target.site, target=target.name, fault=fault)}
        if st.error:
            annotations["description"] = st.error
        return Alert(labels=labels, annotations=annotations, starts_at=from_unix(st.first_seen),
                     ends_at=from_unix(ended) if ended is not None else None,
                     generator_url=f"{self._generator_url}/api/v1/targets?target={target.name}")

    def resume(self, target: str, fault: str, first_seen: float, labels: Mapping[str, str]) -> bool:
        """Take up a fault this target left firing before a restart (its alert still
        firing in an open incident): active, with the labels it fired with, so that the
        first good reading ends it (a transition: the resolution goes out) and a failing
        one repeats nothing. A fault this process has seen already is left as it is;
        False then."""
        states = self._states.setdefault(target, {})
        if fault in states:
            return False
        states[fault] = FaultState(first_seen=first_seen, active=True, labels=dict(labels))
        return True

    def is_active(self, target: str, fault: str) -> bool:
        st = self._states.get(target, {}).get(fault)
        return bool(st and st.active)

    def state(self, target: str) -> dict[str, dict]:
        return {f: {"active": st.active, "since": from_unix(st.first_seen).isoformat(), "error": st.error}
                for f, st in self._states.get(target, {}).items()}

    def retain(self, names: Iterable[str]) -> None:
        """Forget targets that are no longer configured (after a reload)."""
        keep = set(names)
        for name in [n for n in self._states if n not in keep]:
            del self._states[name]
