"""Time, injected (docs/habits.md, habit 12), for code that also waits: a ``Clock`` is a
``TimeSource`` (``core/timesource.py``: what time it is) that can sleep, so tests of
waits, retries, reminders and hand-offs move time on instead of sleeping for real.

``SystemClock`` is the wall clock and asyncio's sleep. ``ManualClock`` stands still
until ``advance`` moves it; every ``sleep`` whose end has been reached then returns.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import datetime, timezone
from typing import Protocol

from monitor.core.supervise import check_cancelled
from monitor.core.timesource import TimeSource


class Clock(TimeSource, Protocol):
    def time(self) -> float:
        """Unix time, seconds (the same instant as ``now()``)."""

    async def sleep(self, seconds: float) -> None:
        """Wait this long on this clock."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    async def sleep(self, seconds: float) -> None:
        check_cancelled()  # a wait never starts in a task whose cancellation a library lost
        await asyncio.sleep(max(0.0, seconds))


SYSTEM = SystemClock()


class ManualClock:
    """A clock for tests: ``advance`` moves it and wakes the sleepers that are due."""

    def __init__(self, start: float | datetime = 1_790_000_000.0):
        self._t = start.timestamp() if isinstance(start, datetime) else float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, timezone.utc)

    async def sleep(self, seconds: float) -> None:
        check_cancelled()
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._t + seconds, next(self._seq), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time on, wake every sleeper due by then, and let them run."""
        self._t += seconds
        while self._sleepers and self._sleepers[0][0] <= self._t:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
        for _ in range(5):  # let the woken tasks reach their next await
            await asyncio.sleep(0)
