"""The errors hallmon raises, translated from library errors at the boundary.

    HallmonError
    ├── ConfigError            config or plan invalid; carries every ConfigIssue found
    ├── ProbeError             one check of one target failed (probes never leak library errors)
    │   ├── ProbeTimeout       no answer within the target's timeout (connect or read)
    │   ├── ProbeConnectError  refused, unreachable, reset, DNS failure of the target's host
    │   └── ProtocolError      the peer answered, but not in its protocol (garbage, too long)
    │       └── PeerError      the peer answered in protocol with an error (NUT ERR, DE 39)
    ├── StoreError             Redis unreachable or answered unexpectedly
    └── ChannelError           a page could not be handed to its channel (``retryable``:
                               5xx, timeouts, connection errors, a robot's rate-limit code)
"""
from __future__ import annotations

import os
from dataclasses import dataclass


def os_reason(err: OSError) -> str:
    """A socket error's reason, the same under asyncio and uvloop ("Connection refused")."""
    return os.strerror(err.errno) if err.errno else str(err)


class HallmonError(Exception):
    """Base of every error hallmon raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config or plan file, located by file, line and key path."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(HallmonError):
    def __init__(self, issues: list[ConfigIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class ProbeError(HallmonError):
    """A check failed. ``str(err)`` is what goes into the reading's ``error``."""

    def __init__(self, target: str, message: str):
        self.target = target
        self.message = message
        super().__init__(message)


class ProbeTimeout(ProbeError):
    pass


class ProbeConnectError(ProbeError):
    pass


class ProtocolError(ProbeError):
    pass


class PeerError(ProtocolError):
    """The peer reported an error in its own protocol; ``code`` is its code (e.g. DATA-STALE, 91)."""

    def __init__(self, target: str, message: str, code: str):
        self.code = code
        super().__init__(target, message)


class StoreError(HallmonError):
    pass


class ChannelError(HallmonError):
    """Sending a page failed; ``retryable`` for 5xx, timeouts and connection errors.
    The message never carries a channel's token or secret."""

    def __init__(self, channel: str, message: str, retryable: bool):
        super().__init__(f"{channel}: {message}")
        self.channel = channel
        self.retryable = retryable
