"""Ingest: request bodies → ``Alert`` values, or a precise 400.

Two shapes: Alertmanager's webhook (payload ``version: "4"``, alerts under ``alerts``
with a ``status``) and a JSON list in Alertmanager's v2 alert shape (``labels``,
``annotations``, ``startsAt``, ``endsAt``, ``generatorURL``). Nothing is stored unless
the whole body is valid. Given a ``Window``, an alert's ``startsAt`` must lie inside it
(an alert from year 1 would replay every clock since; one from the future is a clock
gone wrong): outside it the body is refused with 400.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from monitor.core.alert import Alert
from monitor.core.errors import Invalid
from monitor.service.inputs import parse_time

MAX_ALERTS = 50_000
_ZERO = "0001-01-01T00:00:00Z"  # Go's zero time: Alertmanager's "not set"


@dataclass(frozen=True)
class Window:
    """How far an alert's ``startsAt`` may lie before and after now (``api.alert_max_age``,
    ``api.alert_max_ahead``)."""

    past: timedelta
    future: timedelta


def _time(value: Any, where: str, required: bool) -> datetime | None:
    if value is None or value == _ZERO:
        if required:
            raise Invalid(f"{where}: required")
        return None
    return parse_time(value, where)


def _strmap(value: Any, where: str, required: bool) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{where}: expected an object of strings")
    for k, v in value.items():
        if type(v) is not str:
            raise Invalid(f"{where}.{k}: expected a string")
    return value  # the parser's own fresh dict: nothing else holds it


def parse_alert(obj: Any, where: str, source: str, status: str | None = None,
                now: datetime | None = None, window: Window | None = None) -> Alert:
    now = now or datetime.now(timezone.utc)
    bounds = None if window is None else (now - window.past, now + window.future)
    return _alert(obj, where, source, status, now, bounds)


def _alert(obj: Any, where: str, source: str, status: str | None, now: datetime,
           bounds: tuple[datetime, datetime] | None) -> Alert:
    if not isinstance(obj, dict):
        raise Invalid(f"{where}: expected an object")
    labels = _strmap(obj.get("labels"), f"{where}.labels", required=True)
    if not labels:
        raise Invalid(f"{where}.labels: must not be empty")
    starts = _time(obj.get("startsAt"), f"{where}.startsAt", required=False) or now
    if bounds is not None and not bounds[0] <= starts <= bounds[1]:
        past, future = now - bounds[0], bounds[1] - now
        raise Invalid(f"{where}.startsAt: expected within {past.total_seconds():g}s before and "
                      f"{future.total_seconds():g}s after now, got {starts.isoformat()}")
    ends = _time(obj.get("endsAt"), f"{where}.endsAt", required=False)
    if status == "firing" and ends is not None and ends <= now:
        ends = None  # Alertmanager sends a future endsAt on firing alerts; a past one is stale
    if status == "resolved" and (ends is None or ends > now):
        ends = now  # the sender says resolved: a future endsAt is only its clock running ahead
    url = obj.get("generatorURL", "")
    if type(url) is not str:
        raise Invalid(f"{where}.generatorURL: expected a string")
    return Alert(labels=labels, annotations=_strmap(obj.get("annotations"), f"{where}.annotations", False),
                 starts_at=starts, ends_at=ends, generator_url=url, source=source)


def parse_webhook(body: Any, window: Window | None = None, now: datetime | None = None) -> list[Alert]:
    """Alertmanager webhook payload version 4."""
    if not isinstance(body, dict):
        raise Invalid("body: expected an Alertmanager webhook object")
    if body.get("version") != "4":
        raise Invalid(f"version: expected \"4\", got {body.get('version')!r}")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise Invalid("alerts: expected a list")
    if len(alerts) > MAX_ALERTS:
        raise Invalid(f"alerts: at most {MAX_ALERTS} per request")
    out = []
    now = now or datetime.now(timezone.utc)
    bounds = None if window is None else (now - window.past, now + window.future)
    for i, a in enumerate(alerts):
        if not isinstance(a, dict):
            raise Invalid(f"alerts[{i}]: expected an object")
        status = a.get("status", "firing")
        if status not in ("firing", "resolved"):
            raise Invalid(f"alerts[{i}].status: expected firing or resolved")
        out.append(_alert(a, f"alerts[{i}]", "alertmanager", status, now, bounds))
    return out


def parse_list(body: Any, window: Window | None = None, now: datetime | None = None) -> list[Alert]:
    """A JSON list of alerts in Alertmanager's v2 shape."""
    if not isinstance(body, list):
        raise Invalid("body: expected a JSON list of alerts")
    if len(body) > MAX_ALERTS:
        raise Invalid(f"body: at most {MAX_ALERTS} alerts per request")
    now = now or datetime.now(timezone.utc)
    bounds = None if window is None else (now - window.past, now + window.future)
    return [_alert(a, f"[{i}]", "api", None, now, bounds) for i, a in enumerate(body)]


def parse_stored(kind: str, body: Any, now: datetime) -> list[Alert]:
    """A body the API already checked and stored (``incidents/intake.py``), parsed again
    as at its request's time: no window (it held then; it may not a moment later)."""
    return parse_webhook(body, now=now) if kind == "webhook" else parse_list(body, now=now)
