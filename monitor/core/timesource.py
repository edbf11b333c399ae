"""Time as a value passed in (docs/habits.md, habit 12): code that waits on, stamps or
compares against the current time takes a ``TimeSource``, so tests move time forward
instead of sleeping."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Protocol


class TimeSource(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemTime:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


SYSTEM_TIME = SystemTime()


def whole(dt: datetime) -> datetime:
    """``dt`` to the second: what incident records keep (their JSON says seconds)."""
    return dt.replace(microsecond=0)


def fixed(dt: datetime) -> datetime:
    """``dt`` with its zone replaced by the fixed offset it has at that moment: the same
    instant and the same local reading, but one that compares equal to itself read back
    from JSON (a zone's repeated hour makes inter-zone comparisons unequal, PEP 495)."""
    offset = dt.utcoffset()
    return dt if offset is None or isinstance(dt.tzinfo, timezone) else dt.astimezone(timezone(offset))


def iso(dt: datetime) -> str:
    """RFC 3339 with the offset ``dt`` carries; seconds, or microseconds when it has them,
    so that ``datetime.fromisoformat(iso(dt)) == dt`` always."""
    return dt.isoformat(timespec="seconds" if dt.microsecond == 0 else "microseconds")


def parse_iso(text: str) -> datetime:
    """The inverse of ``iso`` (and of any RFC 3339 time with an offset)."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"time without an offset: {text!r}")
    return dt
