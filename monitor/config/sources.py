"""The ``sources:`` section: alert sources beside the probes and Alertmanager.

``zabbix``: how a Zabbix event (host groups, event tags, severity) becomes hallmon's
labels (site, unit, system, fault). Validated once here; ``cross_issues`` checks the
sites and units its rules name against the organisation.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from monitor.core.target import Duration, Model

_FAULT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
Severity = Literal["not_classified", "information", "warning", "average", "high", "disaster"]
SEVERITIES: tuple[Severity, ...] = ("not_classified", "information", "warning", "average", "high", "disaster")


def _default_severity() -> dict[Severity, str]:
    return {"disaster": "system.down", "high": "system.down", "average": "system.slow", "warning": "system.slow"}


def _fault(value: str | None) -> str | None:
    if value is not None and not _FAULT.match(value):
        raise ValueError(f"expected a fault name like power.on_battery, got {value!r}")
    return value


class ZabbixMatch(Model):
    """What a rule looks for in an event: a host group (exact name, or a prefix ending
    in ``/``, Zabbix's nesting), and/or an event tag (trigger, template and host tags
    all become event tags); every given condition must hold."""

    host_group: str | None = None
    tag: str | None = None
    value: str | None = None  # the tag's value; absent: any value

    @model_validator(mode="after")
    def _some(self) -> "ZabbixMatch":
        if self.host_group is None and self.tag is None:
            raise ValueError("give host_group, tag or both")
        if self.value is not None and self.tag is None:
            raise ValueError("value: needs a tag")
        return self


class ZabbixSet(Model):
    site: str | None = None
    unit: str | None = None
    system: str | None = None
    fault: str | None = None

    @field_validator("fault")
    @classmethod
    def _check_fault(cls, v: str | None) -> str | None:
        return _fault(v)

    @model_validator(mode="after")
    def _some(self) -> "ZabbixSet":
        if not any((self.site, self.unit, self.system, self.fault)):
            raise ValueError("set at least one of site, unit, system, fault")
        return self


class ZabbixRule(Model):
    match: ZabbixMatch
    set: ZabbixSet


class ZabbixSource(Model):
    """Rules apply in order; the first rule to set a field wins. A tag named
    ``<tag_prefix>site`` (``…unit``, ``…system``, ``…fault``) sets that field directly and
    wins over every rule. Where nothing sets a fault, ``severity`` does."""

    rules: tuple[ZabbixRule, ...] = ()
    tag_prefix: str = "hallmon."
    severity: dict[Severity, str] = Field(default_factory=_default_severity)
    keep_events: Duration = 90 * 86400.0  # how long an event's labels are remembered (at least 1h)

    @field_validator("keep_events")
    @classmethod
    def _keep(cls, v: float) -> float:
        if v < 3600:
            raise ValueError("expected at least 1h: a recovery must find its problem's labels")
        return v

    @field_validator("severity")
    @classmethod
    def _faults(cls, v: dict[Severity, str]) -> dict[Severity, str]:
        for sev, fault in v.items():
            if not _FAULT.match(fault):
                raise ValueError(f"{sev}: expected a fault name like system.down, got {fault!r}")
        return v


class SourcesConfig(Model):
    zabbix: ZabbixSource | None = None

    def cross_issues(self, sites: set[str], units: set[str]) -> list[tuple[tuple, str]]:
        out: list[tuple[tuple, str]] = []
        for i, rule in enumerate(self.zabbix.rules if self.zabbix else ()):
            loc = ("sources", "zabbix", "rules", i, "set")
            if rule.set.site is not None and rule.set.site not in sites:
                out.append(((*loc, "site"), f"no site {rule.set.site!r}"))
            if rule.set.unit is not None and rule.set.unit not in units:
                out.append(((*loc, "unit"), f"no unit {rule.set.unit!r}"))
        return out
