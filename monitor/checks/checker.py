"""Checker: one check of one target, bounded by its timeout, and what follows from it:
the reading is stored, the fault tracker judges it, the metrics are rebuilt, and any
alert goes to the router's entry point."""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any, Callable, Mapping

import structlog

from monitor.checks.faults import FaultTracker
from monitor.checks.metrics import ReadingSeries, ServiceMetrics
from monitor.core.alert import Alert
from monitor.core.errors import PeerError, ProbeError
from monitor.core.reading import Reading
from monitor.core.target import Target
from probes import Probe

log = structlog.get_logger("hallmon.checker")


class Checker:
    def __init__(self, probes: Mapping[str, Probe], tracker: FaultTracker, series: ReadingSeries,
                 metrics: ServiceMetrics, emit: Callable[[Alert], None]):
        self.probes = probes
        self.tracker = tracker
        self.series = series
        self.metrics = metrics
        self.emit = emit
        self.last: dict[str, Reading] = {}
        self._outcomes: dict[tuple[str, bool], Any] = {}  # prometheus_client child counters

    async def probe(self, target: Target) -> Reading:
        """Run the probe once; never raises for anything the device does."""
        probe = self.probes[target.kind]
        at, t0 = time.time(), time.perf_counter()
        try:
            async with asyncio.timeout(target.timeout):
                return await probe.check(target)
        except TimeoutError:
            error, detail = f"no answer within {target.timeout:g}s", {}
        except PeerError as err:
            error, detail = str(err), {"code": err.code}
        except ProbeError as err:
            error, detail = str(err), {}
        except Exception as err:  # a probe bug must not stop the service
            log.exception("probe_crashed", target=target.name, kind=target.kind)
            error, detail = f"probe crashed: {type(err).__name__}: {err}", {}
        failed = Reading.failure(target.name, at, time.perf_counter() - t0, probe.down_fault, error, detail)
        return replace(failed, values=dict(probe.down_values)) if probe.down_values else failed

    def record(self, target: Target, reading: Reading) -> list[Alert]:
        self.last[target.name] = reading
        alerts = self.tracker.observe(target, reading)
        faults = self.probes[target.kind].faults
        self.series.update(target, reading, [(f, self.tracker.is_active(target.name, f)) for f in faults])
        key = (target.kind, reading.ok)
        counter = self._outcomes.get(key)
        if counter is None:
            counter = self._outcomes[key] = self.metrics.checks.labels(target.kind, "ok" if reading.ok else "fail")
        counter.inc()
        for alert in alerts:
            self.metrics.alerts.labels("resolved" if alert.ends_at else "firing").inc()
            self.emit(alert)
        return alerts

    async def check(self, target: Target) -> Reading:
        reading = await self.probe(target)
        self.record(target, reading)
        return reading

    def retain(self, targets: list[Target]) -> None:
        names = {t.name for t in targets}
        self.last = {n: r for n, r in self.last.items() if n in names}
        self.tracker.retain(names)
        self.series.retain(targets)
