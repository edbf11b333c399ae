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


# An alert's checked fields: labels, annotations, startsAt, endsAt, generatorURL
Fields = tuple[dict[str, str], dict[str, str], datetime, "datetime | None", str]


def _time(value: Any, where: str) -> datetime | None:
    return None if value is None or value == _ZERO else parse_time(value, where)


def _strmap(value: Any, where: str, required: bool) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{where}: expected an object of strings")
    for k, v in value.items():
        if type(v) is not str:
            raise Invalid(f"{where}.{k}: expected a string")
    return value  # the parser's own fresh dict: nothing else holds it


def _fields(obj: Any, status: str | None, now: datetime, bounds: tuple[datetime, datetime] | None) -> Fields:
    """One alert checked. Its errors name the field from the alert down (``.labels.x:``);
    the caller puts the alert's place in front, so that no path is formatted unless an
    alert is refused (a burst's 100 alerts a request: formatting every path cost ~25 %)."""
    if not isinstance(obj, dict):
        raise Invalid(": expected an object")
    labels = _strmap(obj.get("labels"), ".labels", required=True)
    if not labels:
        raise Invalid(".labels: must not be empty")
    starts = _time(obj.get("startsAt"), ".startsAt") or now
    if bounds is not None and not bounds[0] <= starts <= bounds[1]:
        past, future = now - bounds[0], bounds[1] - now
        raise Invalid(f".startsAt: expected within {past.total_seconds():g}s before and "
                      f"{future.total_seconds():g}s after now, got {starts.isoformat()}")
    ends = _time(obj.get("endsAt"), ".endsAt")
    if status == "firing" and ends is not None and ends <= now:
        ends = None  # Alertmanager sends a future endsAt on firing alerts; a past one is stale
    if status == "resolved" and (ends is None or ends > now):
        ends = now  # the sender says resolved: a future endsAt is only its clock running ahead
    url = obj.get("generatorURL", "")
    if type(url) is not str:
        raise Invalid(".generatorURL: expected a string")
    return labels, _strmap(obj.get("annotations"), ".annotations", False), starts, ends, url


def _bounds(window: Window | None, now: datetime) -> tuple[datetime, datetime] | None:
    return None if window is None else (now - window.past, now + window.future)


def _webhook_fields(body: Any, window: Window | None = None, now: datetime | None = None) -> list[Fields]:
    """Alertmanager webhook payload version 4, checked in full."""
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
    bounds = _bounds(window, now)
    for i, a in enumerate(alerts):
        try:
            if not isinstance(a, dict):
                raise Invalid(": expected an object")
            status = a.get("status", "firing")
            if status not in ("firing", "resolved"):
                raise Invalid(".status: expected firing or resolved")
            out.append(_fields(a, status, now, bounds))
        except Invalid as err:
            raise Invalid(f"alerts[{i}]{err}") from None
    return out


def _list_fields(body: Any, window: Window | None = None, now: datetime | None = None) -> list[Fields]:
    """A JSON list of alerts in Alertmanager's v2 shape, checked in full."""
    if not isinstance(body, list):
        raise Invalid("body: expected a JSON list of alerts")
    if len(body) > MAX_ALERTS:
        raise Invalid(f"body: at most {MAX_ALERTS} alerts per request")
    now = now or datetime.now(timezone.utc)
    bounds = _bounds(window, now)
    out = []
    for i, a in enumerate(body):
        try:
            out.append(_fields(a, None, now, bounds))
        except Invalid as err:
            raise Invalid(f"[{i}]{err}") from None
    return out


def parse_webhook(body: Any, window: Window | None = None, now: datetime | None = None) -> list[Alert]:
    return [Alert(labels=f[0], annotations=f[1], starts_at=f[2], ends_at=f[3], generator_url=f[4],
                  source="alertmanager") for f in _webhook_fields(body, window, now)]


def parse_list(body: Any, window: Window | None = None, now: datetime | None = None) -> list[Alert]:
    return [Alert(labels=f[0], annotations=f[1], starts_at=f[2], ends_at=f[3], generator_url=f[4], source="api")
            for f in _list_fields(body, window, now)]


def check_labels(kind: str, body: Any, window: Window, now: datetime) -> list[dict[str, str]]:
    """The request path: the body checked exactly as ``parse_*`` check it, answering only
    each alert's labels (all a token's unit check reads); the intake consumer builds the
    ``Alert`` values from the stored body (building them here too was ~40 % of the checks)."""
    fields = _webhook_fields(body, window, now) if kind == "webhook" else _list_fields(body, window, now)
    return [f[0] for f in fields]


def parse_stored(kind: str, body: Any, now: datetime) -> list[Alert]:
    """A body the API already checked and stored (``incidents/intake.py``), parsed again
    as at its request's time: no window (it held then; it may not a moment later)."""
    return parse_webhook(body, now=now) if kind == "webhook" else parse_list(body, now=now)
