"""The errors hallmon raises, translated from library errors at the boundary.

    HallmonError
    ├── ConfigError            config or plan invalid; carries every ConfigIssue found
    ├── ProbeError             one check of one target failed (probes never leak library errors)
    │   ├── ProbeTimeout       no answer within the target's timeout (connect or read)
    │   ├── ProbeConnectError  refused, unreachable, reset, DNS failure of the target's host
    │   ├── ProbeSetupError    the probe's library refused the target's settings (an address
    │   │                      it cannot use, a key it rejects): fix the config
    │   └── ProtocolError      the peer answered, but not in its protocol (garbage, too long)
    │       └── PeerError      the peer answered in protocol with an error (NUT ERR, DE 39)
    ├── StoreError             Redis unreachable, timed out or not writable (the Redis client
    │   │                      wrapper, durable/connection.py, raises it; the API answers 503
    │   │                      with Retry-After)
    │   └── StoreBusy          every pooled Redis connection stayed busy past the bounded wait
    ├── DirectoryUnavailable   the LDAP directory is down, too slow, or its TLS did not verify (503)
    ├── ChannelError           a page could not be handed to its channel (``retryable``:
    │                          5xx, timeouts, connection errors, a robot's rate-limit code)
    └── Refused                what a caller asked for cannot be done; the API maps each
        │                      class to one status (service/boundary.py), nothing else
        ├── Invalid            400: a malformed body, field or query, or a value the domain
        │                      refuses (a report filed before detection)
        ├── Unauthorized       401: no bearer token, or an unknown one
        │   ├── BadCredentials 401: a sign-in with a wrong name or password (which one is not said)
        │   └── SessionExpired 401: a session past its idle or absolute end
        ├── Forbidden          403: the token lacks the scope or the unit; a forged link
        │   ├── AccountDisabled 403: the account is disabled
        │   └── NoRole         403: a directory user whose groups map to no role
        ├── TooManyAttempts    429: failed sign-ins: ``SlowDown`` (wait) or ``Locked``; ``seconds``
        ├── NotFound           404: no such incident, clock or target
        ├── RequestTimeout     408: the request body did not arrive within its time
        └── Conflict           409: the change does not apply to the incident as it is

Library errors never cross a boundary: redis-py's become ``StoreError`` in the client
wrapper, a probe's library errors become ``ProbeError``s in the probe, a channel's become
``ChannelError``. Python's own ``KeyError``/``ValueError`` are bugs wherever they escape.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from monitor.core.secret import redact


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
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return redact(text)


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


class ProbeSetupError(ProbeError):
    pass


class ProtocolError(ProbeError):
    pass


class PeerError(ProtocolError):
    """The peer reported an error in its own protocol; ``code`` is its code (e.g. DATA-STALE, 91)."""

    def __init__(self, target: str, message: str, code: str):
        self.code = code
        super().__init__(target, message)


class StoreError(HallmonError):
    """Redis could not serve a command; ``str()`` never carries the URL's password."""


class StoreBusy(StoreError):
    """No pooled connection came free within the pool's wait (hallmon is saturated)."""


class ChannelError(HallmonError):
    """Sending a page failed; ``retryable`` for 5xx, timeouts and connection errors.
    The message never carries a channel's token or secret."""

    def __init__(self, channel: str, message: str, retryable: bool):
        super().__init__(f"{channel}: {message}")
        self.channel = channel
        self.retryable = retryable


class Refused(HallmonError):
    """A caller's request that cannot be done; ``str()`` says why, for the caller."""


class Invalid(Refused):
    pass


class Unauthorized(Refused):
    pass


class Forbidden(Refused):
    pass


class NotFound(Refused):
    pass


class RequestTimeout(Refused):
    pass


class Conflict(Refused):
    """The change does not apply to the incident as it is (e.g. ack a resolved one)."""


class BadCredentials(Unauthorized):
    pass


class SessionExpired(Unauthorized):
    """A session past its idle or absolute end."""


class AccountDisabled(Forbidden):
    pass


class NoRole(Forbidden):
    """The password was right, but none of the user's directory groups maps to a role."""


class TooManyAttempts(Refused):
    """Too many failed sign-ins; the next attempt may come in ``seconds``."""

    def __init__(self, message: str, seconds: int):
        super().__init__(message)
        self.seconds = seconds


class SlowDown(TooManyAttempts):
    pass


class Locked(TooManyAttempts):
    pass


class DirectoryUnavailable(HallmonError):
    """The directory could not be asked: down, too slow, TLS refused, service bind refused."""
