"""A dependency's outage said once when it starts and once when it ends (docs/habits.md:
log transitions, not repetitions). Every loop that waits out a failing peer (Redis, a
channel) keeps one ``Outage`` and calls ``failing`` on each failure and ``ok`` on each
success: the log gets ``{name}_failing`` (error, the error text with any URL password
redacted) and ``{name}_recovered`` (info, with how long it lasted), nothing in between.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import structlog

from monitor.core.secret import redact


class Outage:
    def __init__(self, name: str, logger: Any = None, monotonic: Callable[[], float] = time.monotonic,
                 **context: Any) -> None:
        self.name, self.context, self.monotonic = name, context, monotonic
        self.log = logger if logger is not None else structlog.get_logger("hallmon")
        self.since: float | None = None

    @property
    def down(self) -> bool:
        return self.since is not None

    def failing(self, err: BaseException | str, **extra: Any) -> bool:
        """Record a failure; True when it is the first of an outage (just logged)."""
        if self.since is not None:
            return False
        self.since = self.monotonic()
        self.log.error(f"{self.name}_failing", error=redact(str(err)), **self.context, **extra)
        return True

    def ok(self) -> bool:
        """Record a success; True when it ends an outage (just logged)."""
        if self.since is None:
            return False
        lasted = self.monotonic() - self.since
        self.since = None
        self.log.info(f"{self.name}_recovered", lasted_seconds=round(lasted, 1), **self.context)
        return True
