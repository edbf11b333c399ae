"""The config as the incident side reads it: each unit's plan, each site's unit, zone,
uplink and maintenance windows, the organisation the level rules grade scope against,
and the one working-day calendar. Built once per config (``ConfigView.of``), or from a
set of alerts alone when ``plan explain`` runs without a config.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from monitor.core.alert import Alert
from monitor.core.workdays import WorkCalendar
from monitor.plans.levels import OrgView

UPLINK_DEFAULT = "network"  # the system a caused fault folds under when the site names no uplink


@dataclass(frozen=True, slots=True)
class SiteInfo:
    unit: str
    timezone: ZoneInfo
    uplink_system: str  # the system of the site's uplink target
    maintenance: tuple[tuple[datetime, datetime], ...] = ()  # announced windows [from, to)


@dataclass(frozen=True)
class ConfigView:
    plan: str  # the organisation's plan (a built-in id or a path)
    org: OrgView
    timezone: ZoneInfo  # service.timezone
    calendar: WorkCalendar
    sites: Mapping[str, SiteInfo] = field(default_factory=dict)
    unit_plans: Mapping[str, str] = field(default_factory=dict)  # units with their own plan

    @classmethod
    def from_config(cls, cfg: Any) -> "ConfigView":
        uplink: dict[str, str] = {}
        for t in cfg.targets:
            if t.name in cfg.uplinks.get(t.site, ()):
                uplink.setdefault(t.site, t.system)
        sites = {
            s.id: SiteInfo(unit=u.id, timezone=cfg.site_timezone(s.id), uplink_system=uplink.get(s.id, UPLINK_DEFAULT),
                           maintenance=tuple((w.from_, w.to) for w in s.maintenance))
            for u in cfg.organisation.units for s in u.sites}
        return cls(plan=cfg.plan, org=OrgView.from_config(cfg), timezone=ZoneInfo(cfg.service.timezone),
                   calendar=cfg.work_calendar, sites=sites,
                   unit_plans={u.id: u.plan for u in cfg.organisation.units if u.plan})

    @classmethod
    def from_alerts(cls, alerts: Iterable[Alert], plan: str, timezone: str = "Asia/Shanghai",
                    calendar: WorkCalendar | None = None) -> "ConfigView":
        """No config: the units and sites the alerts name are the whole organisation."""
        tz = ZoneInfo(timezone)
        unit_sites: dict[str, set[str]] = {}
        sites: dict[str, SiteInfo] = {}
        for a in alerts:
            unit, site = a.labels.get("unit", "?"), a.labels.get("site", "?")
            unit_sites.setdefault(unit, set()).add(site)
            sites.setdefault(site, SiteInfo(unit=unit, timezone=tz, uplink_system=UPLINK_DEFAULT))
        org = OrgView(unit_sites={u: frozenset(s) for u, s in unit_sites.items()},
                      site_unit={s: i.unit for s, i in sites.items()})
        return cls(plan=plan, org=org, timezone=tz, calendar=calendar or WorkCalendar(), sites=sites)

    def with_plan(self, plan: str) -> "ConfigView":
        """Every unit on ``plan`` (``plan explain --plan``)."""
        return replace(self, plan=plan, unit_plans={})

    def plan_for(self, unit: str | None) -> str:
        return self.unit_plans.get(unit or "", self.plan)

    def tz(self, site: str | None) -> ZoneInfo:
        info = self.sites.get(site or "")
        return info.timezone if info else self.timezone

    def uplink_system(self, site: str | None) -> str:
        info = self.sites.get(site or "")
        return info.uplink_system if info else UPLINK_DEFAULT

    def in_maintenance(self, sites: Iterable[str], at: datetime) -> bool:
        """Every affected site inside an announced maintenance window (Putian art. 3):
        the incident is recorded and marked; paging holds its pages back."""
        names = list(sites)
        return bool(names) and all(
            s in self.sites and any(start <= at < end for start, end in self.sites[s].maintenance) for s in names)
