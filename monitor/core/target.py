"""Target: one device to check, bound to its site and unit, and the spec base that
each probe kind extends with its own fields (address, url, thresholds)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Mapping

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationInfo, model_validator

from monitor.core.workdays import WorkCalendar

_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d|w))+$")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def parse_duration(value: Any) -> float:
    """``"10s"``, ``"5m"``, ``"1h30m"``, ``"500ms"`` → seconds. Numbers are refused so
    that a unit is always explicit."""
    if isinstance(value, str) and _DURATION_RE.match(value.strip()):
        return sum(float(n) * _UNIT[u] for n, u in _PART_RE.findall(value.strip()))
    raise ValueError("expected a duration like 10s")


def format_duration(seconds: float) -> str:
    """The inverse of ``parse_duration``: 7200.0 → ``"7200s"``, 0.5 → ``"0.5s"``."""
    return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"


def parse_hostport(value: Any, default_port: int | None = None) -> str:
    """``host:port`` or ``[v6]:port``; the port may be omitted when the kind has a default."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected an address like 127.0.0.1:3493")
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError("expected an address like [::1]:3493")
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text:
        raise ValueError("expected an address like 127.0.0.1:3493 (write IPv6 as [::1]:3493)")
    else:
        host, port = text, ""
    if not host or any(c.isspace() for c in host):
        raise ValueError("expected an address like 127.0.0.1:3493")
    if not port:
        if default_port is None:
            raise ValueError("expected an address with a port, like 127.0.0.1:443")
        port = str(default_port)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected a port between 1 and 65535")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_hostport(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError("expected an id of letters, digits and . _ - :")
    return value


def _aware(value: Any) -> datetime:
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError("expected a time like 2026-12-01T08:30+08:00") from None
    if dt.tzinfo is None:
        raise ValueError("expected a time with its offset, like 2026-12-01T08:30+08:00")
    return dt


AwareTime = Annotated[datetime, BeforeValidator(_aware)]
def _http_url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("expected an http:// or https:// URL")
    return value


STORED = {"stored": True}  # the validation context of a model read back from Redis: see ``Model``


def _duration(value: Any, info: ValidationInfo) -> float:
    """``parse_duration``; read back from storage (``STORED``), also a number of seconds,
    the form 0.5 froze plans in."""
    if info.context and info.context.get("stored") and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(_duration)]
# a duration that is written back as ``"7200s"`` when dumped to JSON, so that a model
# frozen into Redis (a plan inside its incident) validates again when read back
RoundTripDuration = Annotated[float, BeforeValidator(_duration), PlainSerializer(format_duration, when_used="json")]
HttpUrl = Annotated[str, BeforeValidator(_http_url)]
HostPort = Annotated[str, BeforeValidator(parse_hostport)]
Name = Annotated[str, BeforeValidator(_name)]


class Model(BaseModel):
    """Base of every config model: unknown keys are errors, values are frozen. Validated
    with the context ``STORED`` (a model another release froze into Redis), keys this
    release does not know are dropped instead: what is stored is read, never refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys_when_stored(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context and info.context.get("stored") and isinstance(data, dict):
            known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
            return {k: v for k, v in data.items() if k in known}
        return data


class Closure(Model):
    from_: AwareTime = Field(alias="from")
    to: AwareTime
    reason: str = ""


class Hours(Model):
    """A site's opening hours: on China's working days (make-up days included) unless
    ``working_days`` is false, between ``open`` and ``close`` local time, except closures."""

    open: str = "09:00"
    close: str = "17:00"
    working_days: bool = True
    closures: tuple[Closure, ...] = ()

    @model_validator(mode="after")
    def _times(self) -> "Hours":
        for t in (self.open, self.close):
            if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", t):
                raise ValueError(f"expected a local time like 09:00, got {t!r}")
        if self.close <= self.open:
            raise ValueError("close must be after open")
        return self


class TargetSpec(Model):
    """Fields every target has. Each probe kind subclasses this with ``kind:
    Literal[...]`` and its own fields; config validation picks the class by ``kind``."""

    name: Name
    kind: str
    system: str | None = None  # defaults by kind (the probe class's ``system``)
    interval: Duration = 10.0
    timeout: Duration = 5.0
    for_: Duration = Field(0.0, alias="for")
    clear_for: Duration = 0.0
    labels: Mapping[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_timeout(cls, data: Any) -> Any:
        """No ``timeout``: the smaller of 5 s and the interval (Prometheus's scrape_timeout
        rule), so ``interval: 1s`` alone is valid; only an explicit longer timeout is an error."""
        if isinstance(data, dict) and "timeout" not in data:
            try:
                interval = parse_duration(data.get("interval", 10.0))
            except ValueError:
                return data  # the interval's own error is reported
            return {**data, "timeout": f"{round(min(5.0, interval) * 1000)}ms"}
        return data


def stable_hash(text: str, salt: str = "") -> int:
    """A 64-bit hash that is the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(f"{salt}{text}".encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True, slots=True)
class Target:
    """A validated target bound to where it stands."""

    spec: TargetSpec
    site: str
    unit: str
    system: str
    hours: Hours | None = None  # the site's opening hours, for probes that judge by them
    timezone: str = "Asia/Shanghai"
    calendar: WorkCalendar | None = None  # the config's working days (None: China's official calendar)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def interval(self) -> float:
        return self.spec.interval

    @property
    def timeout(self) -> float:
        return self.spec.timeout

    @property
    def labels(self) -> dict[str, str]:
        """The labels every series and alert of this target carries."""
        return {**self.spec.labels, "site": self.site, "unit": self.unit,
                "system": self.system, "target": self.name}

    def in_shard(self, index: int, count: int) -> bool:
        return stable_hash(self.name, "shard:") % count == index
