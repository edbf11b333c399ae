"""The probe contract: one class per target kind, one ``async def check``.

A probe class declares its config spec (a ``TargetSpec`` subclass with
``kind: Literal[...]``), the ``system`` its targets default to, the faults it can
report, and ``down_fault``: what a timeout or an unreachable device means for it. The
checker wraps every call in the target's timeout and turns a ``ProbeError`` or timeout
into a failing reading carrying ``down_fault``; probes translate their library's errors
into ``ProbeError`` subclasses and never let them escape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import aiohttp

from monitor.core.reading import Reading
from monitor.core.target import Target, TargetSpec


@dataclass(frozen=True)
class ProbeContext:
    """What probes share inside one process: the app's single HTTP session."""

    session: aiohttp.ClientSession


class Probe:
    spec: ClassVar[type[TargetSpec]]
    system: ClassVar[str]
    faults: ClassVar[tuple[str, ...]]
    down_fault: ClassVar[str]
    down_values: ClassVar[dict[str, float]] = {}  # what a failed check reports (e.g. link up = 0)

    def __init__(self, ctx: ProbeContext):
        self.ctx = ctx

    async def check(self, target: Target) -> Reading:  # pragma: no cover - interface
        raise NotImplementedError

    async def close(self) -> None:
        """Release shared connections (a NUT connection per upsd, say)."""
