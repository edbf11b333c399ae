"""What the incident side refuses, as domain errors the API maps to 4xx.

    HallmonError
    ├── NotFound        no such incident (404)
    │   └── NoClock     the incident has no such clock (404); also a KeyError
    ├── Conflict        the change does not apply to the incident as it is (409)
    └── Invalid         the change is malformed for this incident, e.g. a time in the
                        future or before detection (400); also a ValueError
"""
from __future__ import annotations

from monitor.core.errors import HallmonError


class NotFound(HallmonError):
    pass


class NoClock(NotFound, KeyError):
    pass


class Conflict(HallmonError):
    """The change does not apply to the incident as it is (e.g. ack a resolved one)."""


class Invalid(HallmonError, ValueError):
    pass
