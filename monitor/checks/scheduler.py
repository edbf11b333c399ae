"""Scheduler: every target at its interval, forever, without drift or pile-ups.

Each target's checks sit on a fixed grid, ``k * interval + offset``, where the offset is
a stable hash of the target's name: start-up spreads 10,000 targets evenly over the
interval instead of firing them at once, replicas and restarts agree on the grid, and
since every slot is computed from the grid (never "now + interval") there is no drift.
Offsets are quantised to 20 ms so that checks due together share one wake-up of the
loop. The event loop's own timer heap holds one handle per target. A check whose previous
check is still running is skipped and counted; a global semaphore caps concurrent
checks; lag (start time minus scheduled time) is measured after the semaphore.
"""
from __future__ import annotations

import asyncio
import functools
import math
import time
from typing import Awaitable, Callable, Iterable

import structlog

from monitor.checks.metrics import ServiceMetrics
from monitor.core.target import Target, stable_hash

log = structlog.get_logger("hallmon.scheduler")

_QUANTUM = 0.02


class Scheduler:
    def __init__(self, check: Callable[[Target], Awaitable[object]], metrics: ServiceMetrics,
                 max_concurrent: int):
        self._check = check
        self._metrics = metrics
        self._sem = asyncio.Semaphore(max_concurrent)
        self._loop = asyncio.get_running_loop()
        # wall-clock grid mapped onto the loop's monotonic clock once, at start
        self._mono_minus_wall = self._loop.time() - time.time()
        self._targets: dict[str, Target] = {}
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._running: dict[str, asyncio.Task] = {}

    def slot_after(self, target: Target, after: float) -> float:
        """The first grid slot of ``target`` at or after ``after`` (loop time)."""
        interval = target.interval
        # offsets on a 20 ms grid: checks due together run in one loop iteration
        quantum = min(_QUANTUM, interval / 10)
        offset = (stable_hash(target.name) * int(interval / quantum) >> 64) * quantum
        wall = after - self._mono_minus_wall
        k = math.ceil((wall - offset) / interval)
        return k * interval + offset + self._mono_minus_wall

    def set_targets(self, targets: Iterable[Target]) -> None:
        """Schedule exactly these targets; unchanged ones keep their slot."""
        new = {t.name: t for t in targets}
        now = self._loop.time()
        for name in list(self._targets):
            old = self._targets[name]
            if name not in new or new[name].interval != old.interval:
                self._handles.pop(name).cancel()
                del self._targets[name]
        for name, target in new.items():
            self._targets[name] = target
            if name not in self._handles:
                due = self.slot_after(target, now)
                self._handles[name] = self._loop.call_at(due, self._fire, name, due)
        self._metrics.targets.set(len(self._targets))

    def _fire(self, name: str, due: float) -> None:
        target = self._targets[name]
        now = self._loop.time()
        nxt = due + target.interval
        if nxt <= now:  # the loop was blocked for whole intervals: rejoin the grid
            nxt = self.slot_after(target, now)
        self._handles[name] = self._loop.call_at(nxt, self._fire, name, nxt)
        if name in self._running:
            self._metrics.checks_skipped.inc()
            return
        task = self._loop.create_task(self._run(target, due))
        self._running[name] = task
        task.add_done_callback(functools.partial(self._forget, name))

    def _forget(self, name: str, _task: asyncio.Task) -> None:
        self._running.pop(name, None)

    async def _run(self, target: Target, due: float) -> None:
        async with self._sem:
            self._metrics.scheduler_lag.observe(max(0.0, self._loop.time() - due))
            self._metrics.checks_in_flight.inc()
            try:
                await self._check(target)
            except Exception:  # the checker handles probe errors; this is a bug
                log.exception("check_crashed", target=target.name)
            finally:
                self._metrics.checks_in_flight.dec()

    async def stop(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
