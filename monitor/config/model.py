"""Config: YAML read once through the line-tracking loader and validated into frozen,
typed objects. Nothing reads raw YAML after ``load_config`` returns.

Every problem found is reported at once, each as ``file:line: key.path: message``.
"""
from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, PrivateAttr, ValidationError, field_validator, model_validator

from monitor.auth.roles import Scope
from monitor.config.auth import AuthConfig
from monitor.config.paging import PagingConfig
from monitor.config.sources import SourcesConfig
from monitor.core.errors import ConfigError, ConfigIssue
from monitor.core.secret import Secret, SecretEnv, SecretFile
from monitor.core.target import (
    AwareTime,
    Duration,
    HostPort,
    Hours,
    Model,
    Name,
    Target,
    TargetSpec,
    parse_duration,
)
from monitor.core.workdays import WorkCalendar
from monitor.core.yamlload import load_file, locate, schema_issues
from monitor.durable.connection import SENTINEL, parse_sentinel
from monitor.plans.model import Plan, load_plan
from probes import PROBES

__all__ = ["Config", "Secret", "SecretEnv", "SecretFile", "load_config", "validate_config",
           "parse_duration"]


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone like Asia/Shanghai") from None
    return str(value)


TimeZone = Annotated[str, BeforeValidator(_timezone)]

if TYPE_CHECKING:
    TargetUnion = TargetSpec
else:
    TargetUnion = Annotated[Union[tuple(p.spec for p in PROBES.values())],  # noqa: UP007
                            Field(discriminator="kind")]


class RedisPool(Model):
    """The Redis connection pool: at most ``size`` connections; a command waits at most
    ``wait`` for a free one, then the API answers 503 (saturated) instead of queueing."""

    size: int = Field(default=64, ge=2, le=10_000)
    wait: Duration = 1.0


class HttpLimits(Model):
    """What one client may hold of the HTTP server (slow and idle connections)."""

    idle_timeout: Duration = 15.0  # a connection without a complete request (headers) is closed
    body_timeout: Duration = 30.0  # a request body not read in full by then: 408
    max_connections: int = Field(default=512, ge=8, le=100_000)  # past it (or the fd budget): 503 and close
    fd_reserve: int = Field(default=64, ge=0)  # fds kept for probes, Redis and paging beyond their own limits


class ServiceConfig(Model):
    listen: HostPort = "127.0.0.1:9108"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_pool: RedisPool = RedisPool()
    http: HttpLimits = HttpLimits()
    timezone: TimeZone = "Asia/Shanghai"
    max_concurrent_checks: int = Field(default=1000, ge=1, le=100_000)
    public_url: str | None = None  # base of links in pages; default http://<listen>
    log_format: Literal["auto", "console", "json"] = "auto"
    fold_window: Duration = 30.0  # a device fault this close to its site's uplink fault folds into it

    # keys read once at start: a reload that changes one is refused by name (runtime.py)
    RESTART_ONLY: ClassVar[tuple[str, ...]] = ("listen", "redis_url", "redis_pool", "http", "max_concurrent_checks", "public_url",
                    "log_format")

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, v: str) -> str:
        if v.startswith(SENTINEL):
            parse_sentinel(v)
        elif not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a URL like redis://127.0.0.1:6379/0 or redis+sentinel://h:26379/service")
        return v





class Window(Model):
    """A planned outage (Putian art. 3): incidents are recorded and marked, not paged."""

    from_: AwareTime = Field(alias="from")
    to: AwareTime
    reason: str = ""

    @model_validator(mode="after")
    def _order(self) -> "Window":
        if self.to <= self.from_:
            raise ValueError("to: must be after from")
        return self


class Site(Model):
    id: Name
    name: str
    timezone: TimeZone | None = None  # default: service.timezone
    uplinks: tuple[str, ...] = ()  # names of this site's uplink targets
    maintenance: tuple[Window, ...] = ()
    hours: Hours = Hours()  # opening hours (queue judgements)
    targets: tuple[TargetUnion, ...] = ()


class Unit(Model):
    id: Name
    name: str
    head_office: bool = False
    plan: str | None = None  # overrides the organisation's plan for this unit
    sites: tuple[Site, ...] = Field(min_length=1)


class Organisation(Model):
    name: str
    units: tuple[Unit, ...] = Field(min_length=1)


class ApiToken(Model):
    name: str
    secret_env: SecretEnv | None = None
    secret_file: SecretFile | None = None
    scopes: tuple[Scope, ...] = Field(min_length=1)
    units: tuple[str, ...] | None = None  # absent: every unit
    person: str | None = None  # a paging.people id: the actor recorded for this token's actions

    @field_validator("units")
    @classmethod
    def _some_units(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and not v:
            raise ValueError("an empty list limits the token to no unit; leave units out for every unit")
        return v

    @model_validator(mode="after")
    def _one_secret(self) -> "ApiToken":
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError("give exactly one of secret_env, secret_file")
        return self

    @property
    def secret(self) -> Secret:
        secret = self.secret_env or self.secret_file
        assert secret is not None  # _one_secret
        return secret


class ApiConfig(Model):
    tokens: tuple[ApiToken, ...] = ()
    link_secret_env: SecretEnv | None = None  # signs ack links; shared by replicas
    link_secret_file: SecretFile | None = None
    link_ttl: Duration = 24 * 3600.0
    max_body_bytes: int = Field(default=10 << 20, ge=1024)
    # an alert's startsAt must lie within [now - alert_max_age, now + alert_max_ahead]: 400 outside
    alert_max_age: Duration = 30 * 86400.0
    alert_max_ahead: Duration = 3600.0
    # POST /api/v1/alerts waits this long for its alerts to be placed (their incidents in
    # the answer); past it: 202 {"accepted": n, "pending": true}, the alerts stored
    alert_wait: Duration = 2.0
    # one request opens at most this many new incidents; the alerts of its further new
    # groups join one incident of category ``storm`` that lists them (its timeline says so)
    max_new_incidents_per_request: int = Field(default=50, ge=1, le=100_000)


class CalendarConfig(Model):
    """Holidays and make-up working days the calendar library does not know yet."""

    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()
    years: tuple[int, ...] = ()  # years fully described here (no fallback)


class Config(Model):
    service: ServiceConfig = ServiceConfig()
    plan: str = "default"
    organisation: Organisation
    api: ApiConfig = ApiConfig()
    calendar: CalendarConfig = CalendarConfig()
    paging: PagingConfig = PagingConfig.model_validate({})
    auth: AuthConfig = AuthConfig()
    sources: SourcesConfig = SourcesConfig()
    source: str = Field(default="<memory>", exclude=True)
    # the plans ``plan:`` and the units' ``plan:`` name, read when this config was
    # loaded (``validate_config``): a reload reads the plan files again
    _plans: dict[str, Plan] = PrivateAttr(default_factory=dict)

    @property
    def plans(self) -> dict[str, Plan]:
        return self._plans

    def with_plans(self, plans: dict[str, Plan]) -> "Config":
        self._plans = dict(plans)
        return self

    @cached_property
    def targets(self) -> tuple[Target, ...]:
        return tuple(
            Target(spec=spec, site=site.id, unit=unit.id, system=spec.system or PROBES[spec.kind].system,
                   hours=site.hours, timezone=site.timezone or self.service.timezone,
                   calendar=self.work_calendar)
            for unit in self.organisation.units
            for site in unit.sites
            for spec in site.targets)

    @cached_property
    def work_calendar(self) -> WorkCalendar:
        """The one working-day calendar of this config (``calendar:`` added to China's
        official one): clocks, opening hours, rosters and ``plan explain`` all use it."""
        return WorkCalendar.from_config(self.calendar)

    @cached_property
    def sites(self) -> dict[str, tuple[Unit, Site]]:
        return {s.id: (u, s) for u in self.organisation.units for s in u.sites}

    @cached_property
    def uplinks(self) -> dict[str, set[str]]:
        return {s.id: set(s.uplinks) for u in self.organisation.units for s in u.sites if s.uplinks}

    def site_timezone(self, site_id: str) -> ZoneInfo:
        site = self.sites.get(site_id)
        return ZoneInfo(site[1].timezone if site and site[1].timezone else self.service.timezone)


def _seconds(node: Any, key: str, default: float) -> float | None:
    if not isinstance(node, dict) or key not in node:
        return default
    try:
        return parse_duration(node[key])
    except ValueError:
        return None  # reported by the schema


def _cross_checks(data: Any, file: str) -> list[ConfigIssue]:
    """Rules across keys (unique ids, uplinks, timeout within interval), checked on the
    raw tree so that they are reported together with every schema error."""
    issues: list[ConfigIssue] = []
    seen: dict[str, dict[str, str]] = {"unit": {}, "site": {}, "target": {}}

    def note(what: str, value: Any, loc: tuple) -> None:
        if not isinstance(value, str):
            return
        path, line = locate(data, loc)
        if value in seen[what]:
            issues.append(ConfigIssue(file, line, path, f"duplicate {what} id {value!r} (first at {seen[what][value]})"))
        else:
            seen[what][value] = path

    def items(node: Any, key: str) -> list:
        value = node.get(key) if isinstance(node, dict) else None
        return list(enumerate(value)) if isinstance(value, list) else []

    org = data.get("organisation") if isinstance(data, dict) else None
    for ui, unit in items(org, "units"):
        base = ("organisation", "units", ui)
        note("unit", unit.get("id") if isinstance(unit, dict) else None, (*base, "id"))
        for si, site in items(unit, "sites"):
            note("site", site.get("id") if isinstance(site, dict) else None, (*base, "sites", si, "id"))
            names = set()
            for ti, target in items(site, "targets"):
                name = target.get("name") if isinstance(target, dict) else None
                names.add(name)
                note("target", name, (*base, "sites", si, "targets", ti, "name"))
                # a defaulted timeout is min(5 s, interval): only an explicit one can be too long
                timeout = _seconds(target, "timeout", 0.0)
                interval = _seconds(target, "interval", 10.0)
                if timeout is not None and interval is not None and timeout > interval:
                    path, line = locate(data, (*base, "sites", si, "targets", ti, "timeout"))
                    issues.append(ConfigIssue(file, line, path,
                                              f"timeout {timeout:g}s is longer than interval {interval:g}s"))
            for li, uplink in items(site, "uplinks"):
                if uplink not in names:
                    path, line = locate(data, (*base, "sites", si, "uplinks", li))
                    issues.append(ConfigIssue(file, line, path, f"uplink {uplink!r} is not a target of this site"))
    return issues


def _section(model: Any, data: dict, key: str) -> Any:
    """One section validated on its own (None if it has errors of its own): its
    references are checked even when another section failed the schema."""
    try:
        return model.model_validate(data.get(key, {}))
    except ValidationError:
        return None


def _references(cfg: Config | None, data: dict, file: str) -> list[ConfigIssue]:
    """Paging references that resolve; token units and people that exist. With the
    whole config invalid, each section that is valid on its own is still checked, so
    one pass reports every error."""
    issues = []
    paging = cfg.paging if cfg is not None else _section(PagingConfig, data, "paging")
    api = cfg.api if cfg is not None else _section(ApiConfig, data, "api")
    auth = cfg.auth if cfg is not None else _section(AuthConfig, data, "auth")
    for loc, message in paging.cross_issues() if paging is not None else ():
        path, line = locate(data, loc)
        issues.append(ConfigIssue(file, line, path, message))
    org = data.get("organisation")
    units = {u.get("id") for u in org.get("units") or () if isinstance(u, dict)} \
        if isinstance(org, dict) and isinstance(org.get("units"), list) else None
    people = {p.id for p in paging.people} if paging is not None else None
    sources = cfg.sources if cfg is not None else _section(SourcesConfig, data, "sources")
    if sources is not None and units is not None and isinstance(org, dict):
        sites = {str(s.get("id")) for u in org["units"] if isinstance(u, dict)
                 for s in (u.get("sites") or ()) if isinstance(s, dict)}
        for loc, message in sources.cross_issues(sites, {str(u) for u in units}):
            path, line = locate(data, loc)
            issues.append(ConfigIssue(file, line, path, message))
    for ti, token in enumerate(api.tokens if api is not None else ()):
        for ui, unit in enumerate(token.units or ()):
            if units is not None and unit not in units:
                path, line = locate(data, ("api", "tokens", ti, "units", ui))
                issues.append(ConfigIssue(file, line, path, f"no unit {unit!r}"))
        if token.person is not None and people is not None and token.person not in people:
            path, line = locate(data, ("api", "tokens", ti, "person"))
            issues.append(ConfigIssue(file, line, path, f"no person {token.person!r} in paging.people"))
    for gi, grant in enumerate(auth.ldap.groups if auth is not None and auth.ldap is not None else ()):
        for ui, unit in enumerate(grant.units or ()):
            if units is not None and unit not in units:
                path, line = locate(data, ("auth", "ldap", "groups", gi, "units", ui))
                issues.append(ConfigIssue(file, line, path, f"no unit {unit!r}"))
    return issues


def _plans(data: dict, file: str) -> tuple[list[ConfigIssue], dict[str, Plan]]:
    """Plans that exist and validate, read from the document itself so that an unknown
    plan is reported in the same pass as every schema error; with the plans read."""
    org = data.get("organisation")
    units = org.get("units") if isinstance(org, dict) else None
    refs = [(("plan",), data.get("plan", "default"))] + [
        (("organisation", "units", i, "plan"), u.get("plan"))
        for i, u in enumerate(units if isinstance(units, list) else []) if isinstance(u, dict)]
    issues = []
    plans: dict[str, Plan] = {}
    for loc, ref in refs:
        if not isinstance(ref, str) or not ref or ref in plans:
            continue  # absent, or not a string (the schema reports it), or read already
        try:
            plans[ref] = load_plan(ref)
        except ConfigError as err:
            path, line = locate(data, loc)
            issues += [ConfigIssue(file, line, path, str(i)) for i in err.issues]
    return issues, plans


def validate_config(data: Any, file: str) -> Config:
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(file, getattr(data, "line", 1), "", "expected a mapping at the top level")])
    issues: list[ConfigIssue] = []
    cfg = None
    try:
        cfg = Config.model_validate({**data, "source": file})
    except ValidationError as err:
        issues += schema_issues(err, data, file, kinds=tuple(PROBES))
    issues += _cross_checks(data, file)
    plan_issues, plans = _plans(data, file)
    issues += plan_issues
    issues += _references(cfg, data, file)
    if issues or cfg is None:
        raise ConfigError(sorted(issues, key=lambda i: (i.line or 0, i.path)))
    return cfg.with_plans(plans)


def load_config(path: str | Path) -> Config:
    return validate_config(load_file(path), str(path))
