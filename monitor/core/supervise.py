"""Supervised background loops (docs/habits.md, habit 11).

Every loop the service runs (the probe→router consumer, the pager, the timers, the
metrics refresh) runs under ``supervise``: whatever it raises is logged with its class,
counted in ``hallmon_task_restarts_total{task}`` and the loop starts again after a
backoff. A loop that returns is restarted too: a loop is meant to run until cancelled.
A crash that repeats the previous one is not logged again (log transitions, not
repetitions); the counter still counts it.
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Iterable

import structlog
from prometheus_client import Counter

from monitor.core.errors import HallmonError

log = structlog.get_logger("hallmon.supervise")


def check_cancelled() -> None:
    """Raise ``CancelledError`` when this task was cancelled and the cancellation got
    lost on the way: redis-py's asyncio client (8.1) often returns a command's result
    after its task was cancelled, and a loop that goes on from there never stops. Loops
    call this once per turn."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def supervise(task: str, loop: Callable[[], Awaitable[None]], restarts: Counter, *,
                    first_delay: float = 0.1, max_delay: float = 30.0,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Run ``loop()`` until cancelled, restarting it after anything it raises or returns."""
    delay = first_delay
    last: tuple[str, str] | None = None
    counter = restarts.labels(task)
    while True:
        started = time.monotonic()
        try:
            await loop()
            crash: tuple[str, str] = ("returned", "")
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the point of a supervisor: nothing escapes, everything is said
            crash = (type(err).__name__, str(err))
            if crash != last:
                # a HallmonError (Redis unreachable, a refused value) says all in its message;
                # anything else is a bug, and its traceback is what finds it
                log.error("task_crashed", task=task, error_class=crash[0], error=crash[1], restart_in=delay,
                          exc_info=None if isinstance(err, HallmonError) else err)
        else:
            if crash != last:
                log.error("task_returned", task=task, restart_in=delay)
        check_cancelled()  # stopping, not crashing
        last = crash
        counter.inc()
        if time.monotonic() - started > 60:  # it ran a while: a fresh failure, not a crash loop
            delay = first_delay
        await sleep(delay)
        delay = min(delay * 2, max_delay)


async def stop(tasks: Iterable[asyncio.Task], every: float = 0.5) -> None:
    """Cancel the tasks and wait until every one has ended, cancelling again while any
    runs on. On Python 3.11 ``asyncio.wait_for`` (redis-py sends each command through
    it when a socket timeout is set) returns its result and drops a cancellation that
    lands as the awaited call completes (gh-86296): the loop then runs on, and a
    shutdown that cancelled it once would wait for it for ever."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
