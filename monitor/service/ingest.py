"""Ingest: request bodies → ``Alert`` values, or a precise 400.

Two shapes: Alertmanager's webhook (payload ``version: "4"``, alerts under ``alerts``
with a ``status``) and a JSON list in Alertmanager's v2 alert shape (``labels``,
``annotations``, ``startsAt``, ``endsAt``, ``generatorURL``). Nothing is stored unless
the whole body is valid.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from monitor.core.alert import Alert

MAX_ALERTS = 50_000
_ZERO = "0001-01-01T00:00:00Z"  # Go's zero time: Alertmanager's "not set"


class BadInput(ValueError):
    """The body is not acceptable; ``str()`` says where and why."""


def _time(value: Any, where: str, required: bool) -> datetime | None:
    if value in (None, "", _ZERO):
        if required:
            raise BadInput(f"{where}: required")
        return None
    if not isinstance(value, str):
        raise BadInput(f"{where}: expected an RFC 3339 time string")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{where}: not an RFC 3339 time: {value[:40]!r}") from None
    if dt.tzinfo is None:
        raise BadInput(f"{where}: time needs an offset (Z or +08:00)")
    return dt


def _strmap(value: Any, where: str, required: bool) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise BadInput(f"{where}: expected an object of strings")
    for k, v in value.items():
        if not isinstance(v, str):
            raise BadInput(f"{where}.{k}: expected a string")
    return dict(value)


def parse_alert(obj: Any, where: str, source: str, status: str | None = None,
                now: datetime | None = None) -> Alert:
    if not isinstance(obj, dict):
        raise BadInput(f"{where}: expected an object")
    labels = _strmap(obj.get("labels"), f"{where}.labels", required=True)
    if not labels:
        raise BadInput(f"{where}.labels: must not be empty")
    now = now or datetime.now(timezone.utc)
    starts = _time(obj.get("startsAt"), f"{where}.startsAt", required=False) or now
    ends = _time(obj.get("endsAt"), f"{where}.endsAt", required=False)
    if status is not None and status not in ("firing", "resolved"):
        raise BadInput(f"{where}.status: expected firing or resolved")
    if status == "firing" and ends is not None and ends <= now:
        ends = None  # Alertmanager sends a future endsAt on firing alerts; a past one is stale
    if status == "resolved" and (ends is None or ends > now):
        ends = now  # the sender says resolved: a future endsAt is only its clock running ahead
    url = obj.get("generatorURL", "")
    if not isinstance(url, str):
        raise BadInput(f"{where}.generatorURL: expected a string")
    return Alert(labels=labels, annotations=_strmap(obj.get("annotations"), f"{where}.annotations", False),
                 starts_at=starts, ends_at=ends, generator_url=url, source=source)


def parse_webhook(body: Any) -> list[Alert]:
    """Alertmanager webhook payload version 4."""
    if not isinstance(body, dict):
        raise BadInput("body: expected an Alertmanager webhook object")
    if body.get("version") != "4":
        raise BadInput(f"version: expected \"4\", got {body.get('version')!r}")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise BadInput("alerts: expected a list")
    if len(alerts) > MAX_ALERTS:
        raise BadInput(f"alerts: at most {MAX_ALERTS} per request")
    out = []
    for i, a in enumerate(alerts):
        if not isinstance(a, dict):
            raise BadInput(f"alerts[{i}]: expected an object")
        out.append(parse_alert(a, f"alerts[{i}]", "alertmanager", status=a.get("status", "firing")))
    return out


def parse_list(body: Any) -> list[Alert]:
    """A JSON list of alerts in Alertmanager's v2 shape."""
    if not isinstance(body, list):
        raise BadInput("body: expected a JSON list of alerts")
    if len(body) > MAX_ALERTS:
        raise BadInput(f"body: at most {MAX_ALERTS} alerts per request")
    return [parse_alert(a, f"[{i}]", "api") for i, a in enumerate(body)]
