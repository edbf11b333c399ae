"""The ``sources:`` section: alert sources beside the probes and Alertmanager.

``zabbix``: how a Zabbix event (host groups, event tags, severity) becomes hallmon's
labels (site, unit, system, fault). ``traps``: the SNMP trap receiver (address, v2c
communities, v3 users). Validated once here; ``cross_issues`` checks the names they
refer to (sites, UPS targets) against the organisation.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from monitor.core.secret import SecretEnv, SecretFile
from monitor.core.target import HostPort, Model

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
    keep_events: float = Field(default=90 * 86400.0, ge=3600)  # how long an event's labels are remembered

    @field_validator("severity")
    @classmethod
    def _faults(cls, v: dict[Severity, str]) -> dict[Severity, str]:
        for sev, fault in v.items():
            if not _FAULT.match(fault):
                raise ValueError(f"{sev}: expected a fault name like system.down, got {fault!r}")
        return v


class TrapCommunity(Model):
    name: str = Field(min_length=1, max_length=64)  # an id for logs and metrics, never the secret
    secret_env: SecretEnv | None = None
    secret_file: SecretFile | None = None

    @model_validator(mode="after")
    def _one(self) -> "TrapCommunity":
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError("give exactly one of secret_env, secret_file")
        return self


class TrapUser(Model):
    """An SNMPv3 user (USM): the engine id is the sending agent's (traps are sent by
    the authoritative side), so it is named here."""

    user: str = Field(min_length=1, max_length=32)
    engine_id: str  # hex, as the UPS card shows it (0x80001f88…)
    auth_protocol: Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] = "SHA"
    auth_key_env: SecretEnv | None = None
    auth_key_file: SecretFile | None = None
    priv_protocol: Literal["none", "DES", "AES", "AES192", "AES256"] = "AES"
    priv_key_env: SecretEnv | None = None
    priv_key_file: SecretFile | None = None

    @field_validator("engine_id")
    @classmethod
    def _hex(cls, v: str) -> str:
        h = v[2:] if v.lower().startswith("0x") else v
        if not re.fullmatch(r"[0-9a-fA-F]{10,64}", h) or len(h) % 2:
            raise ValueError("expected the agent's engine id in hex, 5 to 32 octets (0x80001f8803…)")
        return h.lower()

    @model_validator(mode="after")
    def _keys(self) -> "TrapUser":
        if (self.auth_key_env is None) == (self.auth_key_file is None):
            raise ValueError("give exactly one of auth_key_env, auth_key_file")
        if self.priv_protocol != "none" and (self.priv_key_env is None) == (self.priv_key_file is None):
            raise ValueError("give exactly one of priv_key_env, priv_key_file (or priv_protocol: none)")
        return self


class TrapSource(Model):
    """The SNMP trap receiver. A trap is taken from a UPS target whose address (host)
    sent it; anything else is counted and logged once per source, never an incident."""

    listen: HostPort = "127.0.0.1:162"
    communities: tuple[TrapCommunity, ...] = ()
    users: tuple[TrapUser, ...] = ()
    max_rate: float = Field(default=200.0, gt=0)  # traps a second one source may send before they are dropped

    @model_validator(mode="after")
    def _some(self) -> "TrapSource":
        if not self.communities and not self.users:
            raise ValueError("give communities (v2c), users (v3) or both")
        return self


class SourcesConfig(Model):
    zabbix: ZabbixSource | None = None
    traps: TrapSource | None = None

    def cross_issues(self, sites: set[str], units: set[str]) -> list[tuple[tuple, str]]:
        out: list[tuple[tuple, str]] = []
        for i, rule in enumerate(self.zabbix.rules if self.zabbix else ()):
            loc = ("sources", "zabbix", "rules", i, "set")
            if rule.set.site is not None and rule.set.site not in sites:
                out.append(((*loc, "site"), f"no site {rule.set.site!r}"))
            if rule.set.unit is not None and rule.set.unit not in units:
                out.append(((*loc, "unit"), f"no unit {rule.set.unit!r}"))
        return out
